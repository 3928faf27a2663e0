"""A consumer stalled on a blackholed PostgreSQL while a flood of room
messages arrives through Redis: its queue overflows, and its client is told
slow_consumer instead of going on with a gap (rooms.channel_layers)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import pytest

from rooms.channel_layers import BoundedPubSubChannelLayer
from rooms.events import room_group
from tests.conftest import TEST_REDIS_URL
from tests.faultproxy import FaultProxy
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

CAP = 20


async def test_stalled_consumer_overflow_is_logged_and_told_slow_consumer(start_server, server_env) -> None:  # type: ignore[no-untyped-def]
    database = urlsplit(server_env["DATABASE_URL"])
    with FaultProxy(database.port or 5432) as proxy:
        proxied = urlunsplit(database._replace(netloc=f"{database.username or 'postgres'}@127.0.0.1:{proxy.port}"))
        web = start_server("daphne", "web", env={"DATABASE_URL": proxied, "CHANNEL_QUEUE_MAX": str(CAP)})
        client = await SocketClient.connected(web.ws_url, "alice")
        assert (await client.request("room.join", room="busy"))["type"] == "room.state"
        proxy.blackhole()
        # Stalled: the join waits on the database, so nothing else is taken.
        await client.send("room.join", room="other")
        await asyncio.sleep(0.5)
        flood = BoundedPubSubChannelLayer(
            hosts=[{"address": TEST_REDIS_URL}], prefix=f"{server_env['LIVE_STATE_PREFIX']}:asgi"
        )
        try:
            for seq in range(10 * CAP):
                event = {"type": "room.message", "room": "busy", "text": "x"}
                await flood.group_send(
                    room_group("busy"), {"type": "room.event", "seq": 10**9 + seq, "exclude": None, "event": event}
                )
        finally:
            await flood.flush()
        await asyncio.to_thread(web.wait_for_log, "overflowed its queue", 10)
        proxy.restore()
        frames = []
        while True:
            frame = await client.next_frame(timeout=20)
            frames.append(frame)
            if frame["type"] == "session.status":
                break
        assert frame["status"] == "DISCONNECTED" and frame["reason"] == "slow_consumer", frames
        # The consumer's pending receive may already hold the first flood
        # message (taken before the queue filled); nothing after the gap.
        assert len([f for f in frames if f["type"] == "room.message"]) <= 1, frames
        log = web.log()
        assert 0 < log.count("overflowed its queue of 20 messages") <= 10
        assert "messages for it were dropped (CHANNEL_QUEUE_MAX)" in log
