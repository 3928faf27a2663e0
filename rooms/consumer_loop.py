"""A consumer's messages, from its client and from the channel layer, handled one at a time.

Channels' ``await_many_dispatch`` does this with a new task per message
and an ``asyncio.wait`` over every source after each: for a room event,
which most of a busy process's messages are, that bookkeeping cost about
as much as sending the event. Here each source has one task for the
consumer's life, and a lock keeps the handling one message at a time, as
Channels does: a handler never runs while another of the same consumer is
suspended (an event is never handled in the middle of a join). An
uncontended lock is taken without a suspension, so a room event costs one
wake-up of its source's task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Source = Callable[[], Awaitable[Any]]
Handle = Callable[[Any], Awaitable[None]]


async def _pump(source: Source, handle: Handle, one_at_a_time: asyncio.Lock) -> None:
    while True:
        message = await source()
        async with one_at_a_time:
            await handle(message)


async def handle_each(sources: Sequence[Source], handle: Handle) -> None:
    """Hand every message of ``sources`` to ``handle``, one at a time, until a handling raises.

    Raises what the handling raised (``StopConsumer`` when the consumer
    ends); a source that raises ends it the same way. Cancelled, it
    cancels its sources' tasks and waits for them.
    """
    one_at_a_time = asyncio.Lock()
    tasks = [asyncio.ensure_future(_pump(source, handle, one_at_a_time)) for source in sources]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                pass  # the first task's error was raised above; this one ended with it
