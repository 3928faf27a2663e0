"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os

import pytest

# Tests must never reach a public STUN server or a developer's own Redis
# data: everything runs on loopback with a prefix of its own.
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _fresh_memory_state() -> None:
    from rooms.state import reset_live_state

    reset_live_state()
