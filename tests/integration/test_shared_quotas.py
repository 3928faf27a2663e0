"""Quotas a client's connections share, on two real daphne processes with
one Redis: joins per client address, chat per identity, rooms per server.
Every socket here connects from 127.0.0.1, so all are one address."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

JOIN_BURST, JOIN_RATE = 20, 2.0
CHAT_BURST, CHAT_RATE = 10, 2.0


@pytest.fixture
def pair(start_server):  # type: ignore[no-untyped-def]
    env = {
        "JOINS_PER_IP_BURST": JOIN_BURST, "JOINS_PER_IP_PER_SECOND": JOIN_RATE,
        "CHAT_IDENTITY_RATE_BURST": CHAT_BURST, "CHAT_IDENTITY_RATE_PER_SECOND": CHAT_RATE,
        "ROOMS_PER_CONNECTION": 100, "ROOMS_MAX": 100,
    }
    return start_server("daphne", "web-a", env=env), start_server("daphne", "web-b", env=env)


async def test_joins_of_one_address_share_one_rate_across_processes(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    sockets = [await SocketClient.connected((a, b)[n % 2].ws_url, f"user{n}") for n in range(10)]
    started = time.monotonic()
    sent = [(socket, await socket.send("room.join", room=f"flood-{n}-{m}"))
            for m in range(30) for n, socket in enumerate(sockets)]
    replies = [await socket.reply(request_id, timeout=20) for socket, request_id in sent]
    elapsed = time.monotonic() - started
    outcomes = Counter(reply.get("code", reply["type"]) for reply in replies)
    print(f"10 sockets, 300 joins in {elapsed:.2f} s: {dict(outcomes)}")
    assert set(outcomes) == {"room.state", "rate_limited"}
    assert JOIN_BURST <= outcomes["room.state"] <= JOIN_BURST + JOIN_RATE * elapsed + 1
    refused = next(reply for reply in replies if reply["type"] == "room.failed")
    assert "JOINS_PER_IP_PER_SECOND" in refused["message"]
    # Both processes refused: the bucket is one, not one per process.
    assert {reply["type"] for socket, reply in zip([s for s, _ in sent], replies, strict=True)
            if socket in sockets[0::2]} == {"room.state", "room.failed"}
    assert {reply["type"] for socket, reply in zip([s for s, _ in sent], replies, strict=True)
            if socket in sockets[1::2]} == {"room.state", "room.failed"}
    for socket in sockets:
        await socket.close()
    assert "Traceback" not in a.log() + b.log()


async def test_chat_of_one_identity_shares_one_rate_across_its_sockets(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    alices = [await SocketClient.connected((a, b)[n % 2].ws_url, "alice") for n in range(5)]
    bob = await SocketClient.connected(a.ws_url, "bob")
    for n, alice in enumerate(alices):
        await alice.request("room.join", room=f"chat-{n}")
        await bob.request("room.join", room=f"chat-{n}")
    started = time.monotonic()
    sent = [(alice, await alice.send("room.message", room=f"chat-{n}", text=f"{n}.{m}"))
            for m in range(20) for n, alice in enumerate(alices)]
    replies = [await alice.reply(request_id, timeout=20) for alice, request_id in sent]
    elapsed = time.monotonic() - started
    accepted = [reply for reply in replies if reply["type"] == "ok"]
    refused = [reply for reply in replies if reply["type"] == "error"]
    assert {reply["code"] for reply in refused} == {"rate_limited"}
    assert CHAT_BURST <= len(accepted) <= CHAT_BURST + CHAT_RATE * elapsed + 1
    # Every accepted message is delivered once, and nothing else.
    delivered = [(await bob.event("room.message", timeout=10))["message"]["id"] for _ in accepted]
    await bob.assert_no_event("room.message", within=0.5)
    assert sorted(delivered) == sorted(reply["message"] for reply in accepted)
    print(f"5 sockets of one identity, 100 messages in {elapsed:.2f} s: "
          f"{len(accepted)} sent and delivered, {len(refused)} rate_limited")
    # Another identity on the same sockets' processes has its own allowance.
    assert (await bob.request("room.message", room="chat-0", text="bob's"))["type"] == "ok"
    for client in [*alices, bob]:
        await client.close()


async def test_rooms_max_counts_the_rooms_of_every_process(start_server) -> None:  # type: ignore[no-untyped-def]
    a = start_server("daphne", "web-a", env={"ROOMS_MAX": 2})
    b = start_server("daphne", "web-b", env={"ROOMS_MAX": 2})
    alice = await SocketClient.connected(a.ws_url, "alice")
    bob = await SocketClient.connected(b.ws_url, "bob")
    assert (await alice.request("room.join", room="one"))["type"] == "room.state"
    assert (await bob.request("room.join", room="two"))["type"] == "room.state"
    for client, room in [(alice, "three"), (bob, "four")]:
        refused = await client.request("room.join", room=room)
        assert (refused["type"], refused["code"]) == ("room.failed", "limit"), refused
        assert "ROOMS_MAX" in refused["message"]
    joined = await bob.request("room.join", room="one")
    assert [p["name"] for p in joined["participants"]] == ["alice"]
    await alice.close()
    await bob.close()
    assert "Traceback" not in a.log() + b.log()
