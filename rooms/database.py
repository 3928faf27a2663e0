"""How async code calls the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from channels.db import database_sync_to_async
from django.db import connection

T = TypeVar("T")


def db_call(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """Wrap a synchronous database function for use from the event loop.

    On PostgreSQL calls run in the thread pool, not Channels' one shared
    thread, so one room's slow write does not queue every other room's; each
    connection still awaits its own calls one by one, so a client's actions
    are recorded in order. SQLite takes one writer at a time whatever the
    threads (and its shared in-memory test database fails rather than
    waits), so there calls keep to the single thread.
    """
    parallel = connection.vendor != "sqlite"
    return database_sync_to_async(function, thread_sensitive=not parallel)  # type: ignore[no-any-return]
