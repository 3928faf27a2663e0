"""Helpers for the long-running asyncio loops of a process."""

import asyncio


def cancelled() -> bool:
    """Whether the current task has been asked to stop.

    Some client libraries catch CancelledError inside their retry loops; a
    ``while True`` around them would then never end and hang shutdown. The
    request stays counted on the task, so loops check it each round.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
