"""Rate limits shared by a client's connections: token buckets by key.

A connection's own limits (chat, joins) are ``TokenBucket`` objects it
keeps. Limits across connections (joins of one client address, chat of
one identity) are kept where every connection that shares them can see
them: in Redis (``RedisRateLimits``, one Lua script per take, so web
processes share each bucket) or in the process (``MemoryRateLimits``, the
embedded one-process default).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis

from rooms.live.redis import lua_source

# A memory of idle buckets is pruned once it holds this many (a full bucket
# is the same as none, so forgetting one changes nothing).
_PRUNE_ABOVE = 1024


@dataclass
class TokenBucket:
    """A rate limit: ``burst`` tokens, refilled at ``rate`` per second."""

    rate: float
    burst: int
    tokens: float = 0.0
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def refill(self) -> None:
        current = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (current - self.updated) * self.rate)
        self.updated = current

    def take(self) -> bool:
        self.refill()
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class RateLimits(Protocol):
    async def take(self, key: str, *, rate: float, burst: int) -> bool:
        """Take one token from the bucket ``key`` (made full on first use); False when it is empty.

        A ``rate`` of 0 is no limit."""
        ...


class MemoryRateLimits:
    """The buckets of one process."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._prune_at = _PRUNE_ABOVE

    async def take(self, key: str, *, rate: float, burst: int) -> bool:
        if rate <= 0:
            return True
        bucket = self._buckets.get(key)
        if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
            bucket = self._buckets[key] = TokenBucket(rate, burst)
        taken = bucket.take()
        if len(self._buckets) >= self._prune_at:
            self._prune()
        return taken

    def _prune(self) -> None:
        for key, bucket in list(self._buckets.items()):
            bucket.refill()
            if bucket.tokens >= bucket.burst:
                del self._buckets[key]
        # Amortized: the next prune waits until the memory has doubled.
        self._prune_at = max(_PRUNE_ABOVE, 2 * len(self._buckets))


class RedisRateLimits:
    """Buckets under ``prefix`` in Redis, shared by every process; each
    expires once it would be full again, so idle clients leave no key."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._take = redis.register_script(lua_source("rate_take"))

    async def take(self, key: str, *, rate: float, burst: int) -> bool:
        if rate <= 0:
            return True
        return bool(await self._take(keys=[f"{self._prefix}:rate:{key}"], args=[repr(float(rate)), burst]))
