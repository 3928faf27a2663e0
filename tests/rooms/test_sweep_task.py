"""The Celery sweep task runs a fresh event loop per call: it must leave no
connection behind (one Redis socket per call piled up in the worker)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from rooms.tasks import sweep_rooms


def open_sockets() -> int:
    count = 0
    for entry in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor is gone already
            count += os.readlink(entry).startswith("socket:")
    return count


@pytest.mark.django_db(transaction=True)
def test_sweep_task_calls_leave_no_redis_connection_open(redis_live_state: str) -> None:
    sweep_rooms()  # the first call may open what the process keeps (the database connection)
    before = open_sockets()
    for _ in range(5):
        assert sweep_rooms() == 0
    assert open_sockets() == before
