"""History writes that never hold up a room: recorded first, applied when
the database can take them.

A room action (join, leave, drop, chat, a stream starting, ending or muted,
a room finalized) changes the live state and tells the room at once; the
matching history write goes into the outbox (``rooms.live.outbox``) and is applied
from there, in order, by whichever process drains it next: the one that
wrote it, right away, or any process's sweep, every ``SWEEP_INTERVAL_MS``,
after the database comes back. Each write is idempotent (``rooms.history``),
because an entry applied just before its drainer died is applied again.

Consecutive entries are applied in one transaction, which is also what
keeps a busy chat from committing once per message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import InterfaceError, OperationalError, transaction

from rooms import history
from rooms.database import db_call
from rooms.history import ChatRecord
from rooms.live.outbox import OutboxStore

logger = logging.getLogger(__name__)

MAX_BATCH = 500
# A drainer whose process dies holds the outbox this long. A lease that
# runs out under a slow drainer makes two apply the same entries: harmless,
# as writes are idempotent and only one removes them.
DRAIN_LEASE_MS = 10_000
# How long an action waits for its own write before answering anyway (the
# write stays queued): a reply is late at most this much while the database
# hangs, and prompt when it refuses.
FLUSH_WAIT_S = 2.0


def _chat_message_record(**record: Any) -> None:
    history.chat_messages_record([ChatRecord(**record)])


def _writes_run(decoded: Sequence[dict[str, Any]]) -> None:
    """Apply ``decoded`` entries in order; consecutive chat messages as one
    batch (two queries however many), which a busy room's chat mostly is:
    one by one they were two queries each, the bulk of a web process's CPU
    at 500 messages a second."""
    chat: list[ChatRecord] = []
    for entry in decoded:
        if entry["write"] == "chat_message":
            chat.append(ChatRecord(**entry["arguments"]))
            continue
        if chat:
            history.chat_messages_record(chat)
            chat = []
        _WRITES[entry["write"]](**entry["arguments"])
    if chat:
        history.chat_messages_record(chat)


# Every write an entry may name, by name; each safe to apply twice.
_WRITES: Mapping[str, Callable[..., object]] = {
    "participant_join": history.participant_record_join,
    "participant_leave": history.participant_record_leave,
    "chat_message": _chat_message_record,
    "stream_start": history.stream_record_start,
    "stream_end": history.stream_record_end,
    "stream_mute": history.stream_record_mute,
    "room_finalize": history.room_finalize,
}

# The database is unreachable (or went away mid-write): keep the entries.
_UNAVAILABLE = (OperationalError, InterfaceError)


def chat_entry(record: ChatRecord) -> dict[str, Any]:
    return dataclasses.asdict(record)


def entry_text(write: str, **arguments: Any) -> str:
    """An outbox entry: one write of ``_WRITES`` with its arguments (its
    JSON text ends with the arguments' object, ``rooms.live.chat_send``)."""
    return json.dumps({"id": uuid.uuid4().hex, "write": write, "arguments": arguments})


def _apply(entries: Sequence[str]) -> int:
    """Apply ``entries`` in order (in a thread); how many are done with.

    All in one transaction; if that fails for a reason other than the
    database being unreachable, one by one, so an entry that can never be
    applied (logged and dropped) does not block the others.
    """
    decoded = [json.loads(entry) for entry in entries]
    try:
        with transaction.atomic():
            _writes_run(decoded)
        return len(entries)
    except _UNAVAILABLE:
        raise
    except Exception:
        logger.warning("applying %d history writes together failed; applying them one by one", len(entries))
    for done, entry in enumerate(decoded):
        try:
            with transaction.atomic():
                _WRITES[entry["write"]](**entry["arguments"])
        except _UNAVAILABLE:
            if done:
                return done
            raise
        except Exception:
            logger.exception("dropping a history write that cannot be applied: %s", entry)
    return len(entries)


class HistoryOutbox:
    """The outbox of one event loop: writes into the store, and drains it in a task of its own."""

    def __init__(self, store: OutboxStore) -> None:
        self._store = store
        self._task: asyncio.Task[None] | None = None
        # Done when a drain pass that starts after the last kick has ended.
        self._next_pass: asyncio.Future[None] | None = None
        self._failing = False

    @property
    def store(self) -> OutboxStore:
        return self._store

    async def write(self, write: str, **arguments: Any) -> None:
        """Queue one write (durably) and start applying it; does not wait for the database."""
        await self._store.push(entry_text(write, **arguments))
        self.kick()

    def kick(self) -> asyncio.Future[None]:
        """Make sure a drain pass starts after this call; the returned future
        is done when that pass has ended."""
        if self._next_pass is None:
            self._next_pass = asyncio.get_running_loop().create_future()
        waiter = self._next_pass
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain_all(), name="history-outbox")
        return waiter

    async def flush(self, timeout: float = FLUSH_WAIT_S) -> None:
        """Wait until what is queued now is applied, or ``timeout`` has passed, or the database refused.

        Waits for one pass over what the outbox holds when the pass starts,
        not for the drain to run dry: under steady traffic from other
        connections it never does, and a reply waiting on it held its
        connection's events back for the whole timeout.
        """
        await asyncio.wait({self.kick()}, timeout=timeout)

    async def settle(self, timeout: float = FLUSH_WAIT_S) -> None:
        """Let a drain under way finish (a loop about to end); start none."""
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=timeout)

    async def pending(self) -> int:
        return await self._store.length()

    async def _drain_all(self) -> None:
        while self._next_pass is not None:
            current, self._next_pass = self._next_pass, None
            try:
                await self._drain()
            except Exception as error:
                if not self._failing:
                    logger.warning("history writes wait for the database (%s); retried every sweep", error)
                self._failing = True
                # Nobody waits for a database that refuses: the waiting
                # passes end now, the next sweep or write tries again.
                for waiter in (current, self._next_pass):
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                self._next_pass = None
                return
            finally:
                if not current.done():
                    current.set_result(None)
            if self._failing:
                logger.info("history writes applied again; the outbox is drained")
                self._failing = False

    async def _drain(self) -> None:
        """One pass: the entries the outbox holds as it starts, in order."""
        owner = f"{os.getpid()}:{uuid.uuid4().hex}"
        remaining, entries = await self._store.take(owner, DRAIN_LEASE_MS, MAX_BATCH)
        if remaining <= 0:
            # Empty (the sweep's usual case: no lock taken, none to leave
            # behind), or another drainer is at it and drains until it is.
            return
        try:
            apply = db_call(_apply)
            while entries:
                done = await apply(entries)
                if not await self._store.ack(first=entries[0], count=done):
                    return  # our lease ran out and another drainer took these over
                remaining -= max(done, 1)
                entries = await self._store.head(min(MAX_BATCH, remaining)) if remaining > 0 else []
        finally:
            await self._store.unlock(owner)
