"""The durable archive of chat: every message becomes a ChatMessage row.

Writes are group-committed: one task per event loop (the archive of the
loop's ``rooms.live.context``) takes every message queued since its last
write and stores them in one transaction, then answers each waiting sender.
Under light load that is one message per commit; at hundreds of messages a
second it is one commit for many, which is what keeps the database from
setting the pace of the chat.
"""

from __future__ import annotations

import asyncio
import logging

from rooms import history
from rooms.database import db_call
from rooms.history import ChatRecord
from rooms.media.loops import cancelled

logger = logging.getLogger(__name__)

MAX_BATCH = 500


class ChatArchive:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[ChatRecord, asyncio.Future[None]]] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="chat-archive")

    async def store(self, record: ChatRecord) -> None:
        """Return once ``record`` is committed; raise if it could not be."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((record, done))
        await done

    async def _run(self) -> None:
        write = db_call(history.chat_messages_record)
        while not cancelled():
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await write([record for record, _ in batch])
            except Exception as error:
                logger.exception("storing %d chat messages failed", len(batch))
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
