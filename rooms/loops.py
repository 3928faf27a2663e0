"""Helpers for the long-running asyncio loops of a process."""

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def cancelled() -> bool:
    """Whether the current task has been asked to stop.

    Some client libraries catch CancelledError inside their retry loops; a
    ``while True`` around them would then never end and hang shutdown. The
    request stays counted on the task, so loops check it each round.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class PerLoop(Generic[T]):
    """One ``factory()`` object per event loop, made on first use.

    Redis clients and background tasks belong to the loop that made them;
    a process running more than one loop (tests, Celery tasks) gets one each.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._objects: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        found = self._objects.get(loop)
        if found is None:
            found = self._objects[loop] = self._factory()
        return found
