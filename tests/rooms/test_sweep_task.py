"""The Celery sweep task runs a fresh event loop per call: it must leave no
connection behind (one Redis socket per call piled up in the worker)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
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
    gc.collect()  # sockets of earlier tests' garbage close now, not during the count
    before = open_sockets()
    for _ in range(5):
        assert sweep_rooms() == 0
    # A leak is one more socket per call; fewer is garbage of earlier tests closing.
    assert open_sockets() <= before


@pytest.mark.django_db(transaction=True)
def test_sweep_task_calls_keep_no_event_loop_alive(redis_live_state: str) -> None:
    """Each call's loop, its context and Redis client are freed (they were
    kept by the process-wide context table: ~140 KB per call, +20 MiB per
    10 min in a worker sweeping every second)."""
    sweep_rooms()
    gc.collect()
    before = closed_loops()
    for _ in range(5):
        sweep_rooms()
    gc.collect()
    assert closed_loops() == before


def closed_loops() -> int:
    return sum(1 for thing in gc.get_objects() if isinstance(thing, asyncio.AbstractEventLoop) and thing.is_closed())
