"""Where history writes wait for the database: a FIFO list of entries.

The list is as durable as the live state it sits beside: in Redis (under
``LIVE_STATE_PREFIX``) it outlives any web process, so whichever process
sweeps next applies what a killed one left; in memory (one process, no
Redis) it lives as long as that live state does. Only the holder of the
drain lock removes entries, from the head, so they are applied in the order
they were written.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from redis.asyncio import Redis

from rooms.live.redis import decoded, lua_source

_ACK = lua_source("outbox_ack")
_UNLOCK = lua_source("outbox_unlock")
_TAKE = lua_source("outbox_take")


class OutboxStore(Protocol):
    async def push(self, entry: str) -> None: ...
    async def head(self, limit: int) -> list[str]:
        """The first ``limit`` entries, oldest first, without removing them."""
        ...
    async def ack(self, *, first: str, count: int) -> bool:
        """Remove the first ``count`` entries if ``first`` is still at the head."""
        ...
    async def length(self) -> int: ...
    async def lock(self, owner: str, lease_ms: int) -> bool: ...
    async def unlock(self, owner: str) -> None: ...
    async def take(self, owner: str, lease_ms: int, limit: int) -> tuple[int, list[str]]:
        """Begin a drain: if there are entries and the lock is free, take the lock
        and answer (the length, the first ``limit`` entries); otherwise (0, [])
        when empty, (-1, []) when another drainer holds the lock."""
        ...


class RedisOutboxStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._key = f"{prefix}:history:outbox"
        self._lock_key = f"{prefix}:history:outbox:lock"
        self._ack = redis.register_script(_ACK)
        self._unlock = redis.register_script(_UNLOCK)
        self._take = redis.register_script(_TAKE)

    async def push(self, entry: str) -> None:
        await self._redis.rpush(self._key, entry)

    async def head(self, limit: int) -> list[str]:
        return [decoded(entry) for entry in await self._redis.lrange(self._key, 0, limit - 1)]

    async def ack(self, *, first: str, count: int) -> bool:
        return bool(await self._ack(keys=[self._key], args=[first, count]))

    async def length(self) -> int:
        return int(await self._redis.llen(self._key))

    async def lock(self, owner: str, lease_ms: int) -> bool:
        return bool(await self._redis.set(self._lock_key, owner, nx=True, px=lease_ms))

    async def unlock(self, owner: str) -> None:
        await self._unlock(keys=[self._lock_key], args=[owner])

    async def take(self, owner: str, lease_ms: int, limit: int) -> tuple[int, list[str]]:
        # One round trip where length, lock and head were three.
        result = await self._take(keys=[self._key, self._lock_key], args=[owner, lease_ms, limit])
        return int(result[0]), [decoded(entry) for entry in result[1:]]


class MemoryOutboxStore:
    """One process's outbox; its entries go when the process does, as its rooms do."""

    def __init__(self) -> None:
        self._entries: deque[str] = deque()
        self._owner: str | None = None

    async def push(self, entry: str) -> None:
        self._entries.append(entry)

    async def head(self, limit: int) -> list[str]:
        return [self._entries[i] for i in range(min(limit, len(self._entries)))]

    async def ack(self, *, first: str, count: int) -> bool:
        if not self._entries or self._entries[0] != first:
            return False
        for _ in range(count):
            self._entries.popleft()
        return True

    async def length(self) -> int:
        return len(self._entries)

    async def lock(self, owner: str, lease_ms: int) -> bool:
        if self._owner is not None:
            return False
        self._owner = owner
        return True

    async def unlock(self, owner: str) -> None:
        if self._owner == owner:
            self._owner = None

    async def take(self, owner: str, lease_ms: int, limit: int) -> tuple[int, list[str]]:
        if not self._entries:
            return 0, []
        if not await self.lock(owner, lease_ms):
            return -1, []
        return len(self._entries), await self.head(limit)
