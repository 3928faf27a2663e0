"""Noticing that the live state was lost, and ending the sessions it held.

The live state carries an epoch (``LiveState.epoch_get``). Each process
remembers the epoch its sessions were opened under; when the state's epoch
is gone or different (Redis restarted without persistence, flushed, failed
over to an empty replica), or a sweep elsewhere took this process for dead
and dropped its sessions, what the process holds in memory (rooms it
thinks its sessions are in, room event counts) no longer matches the
state. Every session of the process then ends with ``DISCONNECTED``
``state_lost``; clients reconnect and rejoin, so rooms are rebuilt from
who is actually there, and no session keeps acting on a state that is gone.

Checked by the heartbeat loop (``rooms.runtime``) and before each request
of a session (``rooms.consumers``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from rooms.live.context import ProcessContext, process_context

logger = logging.getLogger(__name__)


async def epoch_current() -> str:
    """The live state's epoch; if it changed since this process last looked,
    the sessions opened under the old one are ended first."""
    context = process_context()
    epoch = await context.live_state.epoch_get()
    if epoch is not None and epoch == context.live_epoch:
        return epoch
    async with context.live_epoch_changing:
        epoch = await context.live_state.epoch_ensure(uuid.uuid4().hex)
        previous, context.live_epoch = context.live_epoch, epoch
        if previous is not None and previous != epoch:
            logger.warning("the live state was lost (epoch %s, now %s): ending this process's sessions",
                           previous, epoch)
            await sessions_end(context, keep_epoch=epoch)
    return epoch


async def sessions_forgotten() -> None:
    """A sweep elsewhere took this process for dead and dropped its sessions
    from the live state: they end (``state_lost``) as if the state were lost."""
    context = process_context()
    async with context.live_epoch_changing:
        logger.warning("this process was taken for dead and its sessions dropped: ending them")
        await sessions_end(context, keep_epoch=None)


async def sessions_end(context: ProcessContext, *, keep_epoch: str | None) -> None:
    """End every session of the process not opened under ``keep_epoch``."""
    ending = [
        connection for connection in context.connections
        if connection.live_epoch() is not None and connection.live_epoch() != keep_epoch
    ]
    results = await asyncio.gather(*(connection.state_lost() for connection in ending), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            logger.error("ending a session after the live state was lost failed: %r", result)
    if ending:
        logger.warning("ended %d sessions: state_lost", len(ending))
