"""Rate limits shared by a client's connections, in memory and in real
Redis (where two clients on one prefix stand for two web processes)."""

from __future__ import annotations

import asyncio

import pytest
from django.conf import settings

from rooms.live.context import process_context
from rooms.live.rates import MemoryRateLimits, RedisRateLimits, TokenBucket
from rooms.live.redis import redis_client


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=2)
    assert bucket.take() and bucket.take()
    assert not bucket.take()
    bucket.updated -= 0.5  # half a second ago: one token back at 2 per second
    assert bucket.take()
    assert not bucket.take()
    bucket.updated -= 60
    bucket.refill()
    assert bucket.tokens == 2


async def test_memory_buckets_are_by_key_and_rate_zero_is_no_limit() -> None:
    limits = MemoryRateLimits()
    assert [await limits.take("a", rate=0.01, burst=2) for _ in range(3)] == [True, True, False]
    assert await limits.take("b", rate=0.01, burst=2)
    assert [await limits.take("a", rate=0, burst=0) for _ in range(100)] == [True] * 100


async def test_memory_forgets_full_buckets_so_many_clients_do_not_grow_it() -> None:
    limits = MemoryRateLimits()
    for n in range(5000):
        await limits.take(f"client{n}", rate=1e9, burst=1)  # full again at once
    assert len(limits._buckets) <= 1024
    # An empty bucket is never forgotten early.
    for n in range(1500):
        await limits.take(f"slow{n}", rate=0.001, burst=1)
    assert [await limits.take(f"slow{n}", rate=0.001, burst=1) for n in range(1500)] == [False] * 1500


@pytest.mark.usefixtures("redis_live_state")
async def test_redis_buckets_are_shared_by_processes_and_expire_when_full() -> None:
    context = process_context()
    other_client = redis_client(settings.REDIS_URL)
    other = RedisRateLimits(other_client, settings.LIVE_STATE_PREFIX)
    try:
        mine = context.rate_limits
        taken = await asyncio.gather(
            *(limits.take("joins:ip:10.0.0.1", rate=0.01, burst=5) for limits in [mine, other] * 5)
        )
        assert sorted(taken) == [False] * 5 + [True] * 5
        assert await other.take("joins:ip:10.0.0.2", rate=0.01, burst=5)
        assert await mine.take("joins:ip:10.0.0.1", rate=0, burst=0)  # no limit
        # The key lives only until its bucket would be full again (here
        # 5 tokens at 0.01/s: 500 s), so idle clients leave nothing behind.
        key = f"{settings.LIVE_STATE_PREFIX}:rate:joins:ip:10.0.0.1"
        assert 490_000 < await other_client.pttl(key) <= 501_000
        assert await other.take("quick", rate=1000, burst=1)
        assert 0 < await other_client.pttl(f"{settings.LIVE_STATE_PREFIX}:rate:quick") <= 1001
    finally:
        await other_client.aclose()
        await context.close()
