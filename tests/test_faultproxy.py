"""The fault proxy breaks real connections to the shared Redis (never the Redis itself)."""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import TEST_REDIS_URL
from tests.faultproxy import FaultProxy

REDIS_PORT = int(TEST_REDIS_URL.rsplit(":", 1)[1].split("/")[0])


def client(proxy: FaultProxy) -> redis.Redis:
    # No retries: each fault must show on the call that meets it.
    return redis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=0.5, socket_connect_timeout=0.5,
                       retry=Retry(NoBackoff(), 0))


def test_cut_resets_open_connections_and_refuses_new_ones_until_restored() -> None:
    with FaultProxy(REDIS_PORT) as proxy:
        first = client(proxy)
        assert first.ping()
        assert proxy.open_connections == 1
        assert proxy.cut() == 1
        with pytest.raises(redis.ConnectionError):
            first.ping()
        with pytest.raises(redis.ConnectionError):
            client(proxy).ping()
        proxy.restore()
        assert client(proxy).ping()


def test_reset_connections_is_a_blip() -> None:
    with FaultProxy(REDIS_PORT) as proxy:
        first = redis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=0.5, retry=Retry(NoBackoff(), 1))
        assert first.ping()
        assert proxy.reset_connections() == 1
        # redis-py reconnects once on a connection error: the new connection is forwarded.
        assert first.ping()
        assert proxy.accepted == 2


def test_blackhole_hangs_until_restored_then_the_link_is_reset() -> None:
    with FaultProxy(REDIS_PORT) as proxy:
        first = client(proxy)
        assert first.ping()
        proxy.blackhole()
        with pytest.raises(redis.TimeoutError):
            first.ping()
        proxy.restore()
        assert proxy.open_connections == 0
        assert client(proxy).ping()
