"""Fixtures of the recording tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def recordings_root(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """RECORDINGS_ROOT in a folder of the test's own."""
    root = tmp_path / "recordings"
    root.mkdir()
    settings.RECORDINGS_ROOT = root
    return root
