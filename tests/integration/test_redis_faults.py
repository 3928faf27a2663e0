"""Redis loses its data or goes away, under two real daphne processes.

Each test runs its own redis-server (``own_redis``: no persistence) on a free port, so it
can flush it, restart it or put tests/faultproxy.py in front of it without
touching the shared Redis. Times are printed (``-s``) for docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest

from tests.faultproxy import FaultProxy
from tests.processes import RedisServer
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

# A request meeting an unreachable Redis is answered within this (rooms.live.redis.COMMAND_TIMEOUT_S is 1 s).
UNAVAILABLE_BOUND_S = 2.0
ROOM = "weekly-sync"


async def state_lost(client: SocketClient, timeout: float = 5) -> dict[str, object]:
    event = await client.event("session.status", timeout=timeout)
    assert event == {"type": "session.status", "status": "DISCONNECTED", "reason": "state_lost"}
    return event


def members(server: RedisServer, prefix: str, room: str) -> dict[str, str]:
    raw = server.client().hgetall(f"{prefix}:room:{room}:members")
    return {key.decode(): value.decode() for key, value in raw.items()}


def room_rows(database_url: str, room: str) -> list[tuple[str, dict[str, str | None]]]:
    """Each Room row named ``room``, oldest first: (status, {login: leave_reason or None if still in})."""
    with psycopg.connect(database_url) as connection:
        rooms = connection.execute("SELECT id, status FROM rooms_room WHERE name = %s ORDER BY id", (room,)).fetchall()
        return [
            (status, {login: reason if left_at else None for login, reason, left_at in connection.execute(
                "SELECT login, leave_reason, left_at FROM rooms_participant WHERE room_id = %s ORDER BY id", (room_id,)
            ).fetchall()})
            for room_id, status in rooms
        ]


async def connected_when_available(url: str, name: str, timeout: float = 5) -> SocketClient:
    """A session as a client that follows the protocol gets one: ``unavailable`` is retried.

    Just after Redis is back (or was replaced by an empty one), a process
    answers ``unavailable`` until events reach it again (rooms.runtime.events_probe).
    """
    client = await SocketClient.open(url)
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while True:
            reply = await client.request("session.connect", username=name)
            if reply.get("status") == "ESTABLISHED":
                break
            assert reply.get("code") == "unavailable", reply
            await asyncio.sleep(0.1)  # the protocol's retry with a backoff, not a wait for an event
    if time.monotonic() - started > 0.05:
        print(f"\n{name}: session after {time.monotonic() - started:.2f} s of unavailable")
    return client


async def wait_for(check, timeout: float = 5) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            await asyncio.to_thread(check)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


async def closed(client: SocketClient, timeout: float = 5) -> None:
    """The server closes the socket after the DISCONNECTED."""
    from websockets.exceptions import ConnectionClosed

    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await client.socket.recv()


@pytest.fixture
def pair(own_redis, start_server):  # type: ignore[no-untyped-def]
    env = {"REDIS_URL": own_redis.url}
    return start_server("daphne", "web-a", env=env), start_server("daphne", "web-b", env=env)


async def _lose_and_rebuild(pair, own_redis: RedisServer, server_env, lose) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    # Unique: the run's database keeps the rooms of earlier tests.
    room = f"{ROOM}-{uuid.uuid4().hex[:8]}"
    prefix = server_env["LIVE_STATE_PREFIX"]
    alice = await SocketClient.connected(a.ws_url, "alice")
    bob = await SocketClient.connected(b.ws_url, "bob")
    carol = await SocketClient.connected(b.ws_url, "carol")
    for client in (alice, bob, carol):
        assert (await client.request("room.join", room=room))["type"] == "room.state"
    assert set(members(own_redis, prefix, room)) == {"alice", "bob", "carol"}

    started = time.monotonic()
    await asyncio.to_thread(lose)
    told = []
    for client in (alice, bob, carol):
        await state_lost(client)
        told.append(time.monotonic() - started)
        await closed(client)
    print(f"\nstate_lost after {max(told):.2f} s (each: {', '.join(f'{t:.2f}' for t in told)})")

    # Alice and Bob come back (each on its process again); Carol does not.
    alice = await connected_when_available(a.ws_url, "alice")
    bob = await connected_when_available(b.ws_url, "bob")
    rejoined = await alice.request("room.join", room=room)
    assert rejoined["type"] == "room.state" and rejoined["participants"] == [], rejoined
    assert [p["name"] for p in (await bob.request("room.join", room=room))["participants"]] == ["alice"]
    assert (await alice.event("room.joined"))["participant"]["name"] == "bob"
    assert set(members(own_redis, prefix, room)) == {"alice", "bob"}

    # A second "alice" cannot join beside the first, from either process.
    for server in (a, b):
        impostor = await SocketClient.connected(server.ws_url, "alice")
        refused = await impostor.request("room.join", room=room)
        assert (refused["type"], refused["code"]) == ("room.failed", "login_taken")
        await impostor.close()
    impostor = await SocketClient.connected(b.ws_url, "alice")
    # Bob's private message reaches the one alice in the room.
    await bob.request("room.message", room=room, text="for alice", to=["alice"])
    assert (await alice.event("room.message"))["message"]["text"] == "for alice"
    await impostor.assert_no_event("room.message")
    await impostor.close()

    # History: the lost room's row is finalized with everyone out of it;
    # the rebuilt room has exactly the two who came back.
    database_url = server_env["DATABASE_URL"]

    def rows_settled() -> None:
        rows = room_rows(database_url, room)
        assert len(rows) == 2, rows
        (old_status, old_people), (new_status, new_people) = rows
        assert old_status == "FINALIZED" and None not in old_people.values(), rows
        assert set(old_people) == {"alice", "bob", "carol"}, rows
        assert new_status == "ACTIVE" and new_people == {"alice": None, "bob": None}, rows

    await wait_for(rows_settled)
    await alice.close()
    await bob.close()


async def test_flushdb_ends_every_session_and_rooms_are_rebuilt(pair, own_redis, server_env) -> None:  # type: ignore[no-untyped-def]
    await _lose_and_rebuild(pair, own_redis, server_env, lambda: own_redis.client().flushdb())


async def test_redis_restart_without_persistence_ends_every_session(pair, own_redis, server_env) -> None:  # type: ignore[no-untyped-def]
    await _lose_and_rebuild(pair, own_redis, server_env, own_redis.restart)


async def test_unreachable_redis_answers_unavailable_quickly_and_recovers(own_redis, start_server) -> None:  # type: ignore[no-untyped-def]
    with FaultProxy(own_redis.port) as proxy:
        env = {"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"}
        a = start_server("daphne", "web-a", env=env)
        b = start_server("daphne", "web-b", env=env)
        alice = await SocketClient.connected(a.ws_url, "alice")
        bob = await SocketClient.connected(b.ws_url, "bob")
        for client in (alice, bob):
            assert (await client.request("room.join", room=ROOM))["type"] == "room.state"
        await alice.event("room.joined")

        proxy.blackhole()
        waited = []
        for request in (
            lambda: alice.request("room.message", timeout=10, room=ROOM, text="into the void"),
            lambda: bob.request("room.join", timeout=10, room="another"),
        ):
            started = time.monotonic()
            reply = await request()
            waited.append(time.monotonic() - started)
            assert (reply["type"], reply["code"]) == ("error", "unavailable"), reply
        print(f"\nunavailable after {', '.join(f'{t:.2f}' for t in waited)} s")
        assert max(waited) <= UNAVAILABLE_BOUND_S
        # Connecting is refused the same way, not left hanging.
        newcomer = await SocketClient.open(a.ws_url)
        reply = await newcomer.request("session.connect", timeout=10, username="dave")
        assert (reply["type"], reply["code"]) == ("error", "unavailable"), reply
        # Still open, and the keepalive answers without Redis.
        assert (await alice.request("ping"))["type"] == "pong"

        proxy.restore()
        started = time.monotonic()

        async def chat_works() -> None:
            while True:
                reply = await alice.request("room.message", timeout=10, room=ROOM, text="back")
                if reply["type"] == "ok":
                    return
                assert reply["code"] == "unavailable", reply
                await asyncio.sleep(0.1)

        async with asyncio.timeout(10):
            await chat_works()
        for client in (alice, bob):
            assert (await client.event("room.message"))["message"]["text"] == "back"
        print(f"recovered after {time.monotonic() - started:.2f} s")
        assert (await newcomer.connect_session("dave"))["status"] == "ESTABLISHED"
        assert (await newcomer.request("room.join", room=ROOM))["type"] == "room.state"
        for client in (alice, bob):
            assert (await client.event("room.joined"))["participant"]["name"] == "dave"
        for client in (alice, bob, newcomer):
            await client.close()


async def rejoin_if_lost(client: SocketClient, server, name: str) -> SocketClient:  # type: ignore[no-untyped-def]
    """The client as it is after the outage: the same one, or, if told state_lost, a new one joined again."""
    try:
        await state_lost(client, timeout=1)
    except TimeoutError:
        return client
    await closed(client)
    client = await connected_when_available(server.ws_url, name)
    assert (await client.request("room.join", room=ROOM))["type"] == "room.state"
    return client


async def test_outage_longer_than_presence_ttl_leaves_no_split_room(own_redis, start_server, server_env) -> None:  # type: ignore[no-untyped-def]
    """Past PRESENCE_TTL_MS the processes take each other for dead when Redis
    returns; a process whose sessions a sweep dropped ends them (state_lost)
    instead of keeping members its room no longer has."""
    with FaultProxy(own_redis.port) as proxy:
        env = {"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"}
        a = start_server("daphne", "web-a", env=env)
        b = start_server("daphne", "web-b", env=env)
        alice = await SocketClient.connected(a.ws_url, "alice")
        bob = await SocketClient.connected(b.ws_url, "bob")
        for client in (alice, bob):
            assert (await client.request("room.join", room=ROOM))["type"] == "room.state"
        proxy.blackhole()
        # Three times PRESENCE_TTL_MS (1.5 s): every heartbeat is stale when Redis returns.
        await asyncio.sleep(4.5)
        proxy.restore()

        # A heartbeat or two after Redis returns, each session is either
        # intact or was ended; those ended come back.
        await asyncio.sleep(1.5)
        alice = await rejoin_if_lost(alice, a, "alice")
        bob = await rejoin_if_lost(bob, b, "bob")
        prefix = server_env["LIVE_STATE_PREFIX"]
        assert set(members(own_redis, prefix, ROOM)) == {"alice", "bob"}
        for sender in (alice, bob):
            sent = await sender.request("room.message", room=ROOM, text="still here")
            assert sent["type"] == "ok", sent
            for receiver in (alice, bob):  # the sender too
                assert (await receiver.event("room.message"))["message"]["id"] == sent["message"]
        for client in (alice, bob):
            await client.close()
