"""Quotas of one connection (rooms at once, joins per second, peer
connections: publishes and plays) and of what its connections share:
joins per client address, chat per identity, rooms per server."""

from __future__ import annotations

import asyncio

import pytest

from rooms.live.context import AddressConnections
from rooms.live.contract import SessionInfo
from rooms.media.peer import use_host_address
from rooms.models import Room
from rooms.session import Membership, Session
from tests.media_clients import play, publish
from tests.wsclient import ProtocolClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True, params=["memory", "redis"])
def live_backend(request):  # type: ignore[no-untyped-def]
    if request.param == "redis":
        request.getfixturevalue("redis_live_state")
    return request.param


async def test_rooms_per_connection_refused_with_limit_and_freed_by_a_leave(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ROOMS_PER_CONNECTION = 2
    alice = await ProtocolClient.connected("alice")
    assert (await alice.request("room.join", room="a"))["type"] == "room.state"
    assert (await alice.request("room.join", room="b"))["type"] == "room.state"
    refused = await alice.request("room.join", room="c")
    assert refused["type"] == "room.failed" and refused["code"] == "limit", refused
    assert refused["room"] == "c" and "ROOMS_PER_CONNECTION" in refused["message"]
    # A repeated join of a room it is in is no new room.
    assert (await alice.request("room.join", room="a"))["type"] == "room.state"
    # The refused join left no trace: nobody is in c.
    bob = await ProtocolClient.connected("bob")
    assert (await bob.request("room.join", room="c"))["participants"] == []

    assert (await alice.request("room.leave", room="a"))["type"] == "ok"
    joined = await alice.request("room.join", room="c")
    assert joined["type"] == "room.state" and [p["name"] for p in joined["participants"]] == ["bob"]
    await alice.close()
    await bob.close()


async def test_join_rate_refused_with_rate_limited(settings) -> None:  # type: ignore[no-untyped-def]
    settings.JOINS_BURST = 3
    settings.JOINS_PER_SECOND = 0.01
    alice = await ProtocolClient.connected("alice")
    replies = [await alice.request("room.join", room=f"r{n}") for n in range(5)]
    assert [reply["type"] for reply in replies] == ["room.state"] * 3 + ["room.failed"] * 2
    assert all(reply["code"] == "rate_limited" for reply in replies[3:])
    assert "JOINS_PER_SECOND" in replies[3]["message"]
    # Each connection has its own bucket.
    bob = await ProtocolClient.connected("bob")
    assert (await bob.request("room.join", room="r3"))["participants"] == []
    await alice.close()
    await bob.close()


async def test_joins_per_address_are_shared_by_its_connections(settings) -> None:  # type: ignore[no-untyped-def]
    settings.JOINS_PER_IP_BURST = 4
    settings.JOINS_PER_IP_PER_SECOND = 0.01
    clients = [await ProtocolClient.connected(f"user{n}", address="10.0.0.1") for n in range(3)]
    replies = [await client.request("room.join", room=f"r{n}") for n in range(3) for client in clients]
    assert [reply["type"] for reply in replies] == ["room.state"] * 4 + ["room.failed"] * 5
    assert {(reply["code"], reply["room"]) for reply in replies[4:]} == {("rate_limited", "r1"), ("rate_limited", "r2")}
    assert "JOINS_PER_IP_PER_SECOND" in replies[4]["message"]
    # Another address has its own bucket, and connections with no address
    # (in-process clients) share none.
    other = await ProtocolClient.connected("other", address="10.0.0.2")
    unaddressed = await ProtocolClient.connected("local")
    assert (await other.request("room.join", room="r2"))["participants"] == []
    assert [p["name"] for p in (await unaddressed.request("room.join", room="r2"))["participants"]] == ["other"]
    for client in [*clients, other, unaddressed]:
        await client.close()


async def test_chat_per_identity_is_shared_by_its_connections(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHAT_IDENTITY_RATE_BURST = 3
    settings.CHAT_IDENTITY_RATE_PER_SECOND = 0.01
    sockets = [await ProtocolClient.connected("alice") for _ in range(3)]
    bob = await ProtocolClient.connected("bob")
    for n, socket in enumerate(sockets):
        await socket.request("room.join", room=f"c{n}")
        await bob.request("room.join", room=f"c{n}")
    replies = [await socket.request("room.message", room=f"c{n}", text=f"{n}.{m}") for m in range(2)
               for n, socket in enumerate(sockets)]
    assert [reply["type"] for reply in replies] == ["ok"] * 3 + ["error"] * 3
    assert all(reply["code"] == "rate_limited" for reply in replies[3:])
    assert "'alice'" in replies[3]["message"] and "CHAT_IDENTITY_RATE_PER_SECOND" in replies[3]["message"]
    delivered = sorted([(await bob.event("room.message"))["message"]["text"] for _ in range(3)])
    assert delivered == ["0.0", "1.0", "2.0"]
    await bob.assert_no_event("room.message")
    # Another identity has its own allowance.
    assert (await bob.request("room.message", room="c0", text="bob's"))["type"] == "ok"
    for client in [*sockets, bob]:
        await client.close()


async def test_rooms_max_refuses_a_new_room_with_limit_not_a_live_one(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ROOMS_MAX = 2
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="a")
    await alice.request("room.join", room="b")
    refused = await bob.request("room.join", room="c")
    assert (refused["type"], refused["room"], refused["code"]) == ("room.failed", "c", "limit"), refused
    assert "ROOMS_MAX" in refused["message"]
    assert await Room.objects.filter(name="c").aexists() is False
    joined = await bob.request("room.join", room="a")
    assert joined["type"] == "room.state" and [p["name"] for p in joined["participants"]] == ["alice"]
    # Once a room is over (its last participant left and it was finalized),
    # a new one may be created.
    await alice.request("room.leave", room="b")
    async with asyncio.timeout(10):
        while (reply := await bob.request("room.join", room="c"))["type"] != "room.state":
            assert reply["code"] == "limit", reply
            await asyncio.sleep(0.05)
    await alice.close()
    await bob.close()


def test_room_forget_releases_the_rooms_publishes_and_plays() -> None:
    session = Session(info=SessionInfo(sid="s", username="alice", channel="c", process="p"))
    session.rooms = {"a": Membership("ra", 0), "b": Membership("rb", 0)}
    session.publishes = {"p1": "a", "p2": "b"}
    session.plays = {"q1": "a", "q2": "b"}
    session.room_forget("a")
    assert (session.rooms.keys(), session.publishes, session.plays) == ({"b"}, {"p2": "b"}, {"q2": "b"})
    session.stream_forget("q2")
    session.stream_forget("p2")
    assert session.peer_connections() == 0


def test_address_connections_count_per_address() -> None:
    connections = AddressConnections()
    assert connections.take("10.0.0.1", 2) and connections.take("10.0.0.1", 2)
    assert not connections.take("10.0.0.1", 2)
    assert connections.take("10.0.0.2", 2)
    connections.release("10.0.0.1")
    assert connections.take("10.0.0.1", 2)
    assert all(connections.take("10.0.0.3", 0) for _ in range(100))  # 0: no limit


async def test_peer_connections_per_session_refuse_publish_and_play_until_one_ends(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_HOST_IP = "127.0.0.1"
    use_host_address("127.0.0.1")
    settings.PEER_CONNECTIONS_PER_SESSION = 2
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="r")
    await bob.request("room.join", room="r")
    await publish(alice, "r")
    bobs = (await publish(bob, "r", shade=40)).stream["id"]
    player = await play(alice, bobs)
    await alice.event("stream.status", timeout=10)  # PLAYING

    # Two peer connections: a third publish and a play of another stream are refused.
    refused = await alice.request("stream.publish", room="r", kind="screen", sdp=player.pc.localDescription.sdp)
    assert (refused["type"], refused["stream"], refused["status"], refused["info"]) == (
        "stream.status", None, "FAILED", "limit"
    )
    bobs_screen = (await publish(bob, "r", kind="screen", shade=200)).stream["id"]
    refused = await alice.request("stream.play", stream=bobs_screen, sdp=player.pc.localDescription.sdp)
    assert (refused["stream"], refused["status"], refused["info"]) == (bobs_screen, "FAILED", "limit")

    # Stopping the play frees one.
    assert (await alice.request("stream.stop", stream=bobs))["status"] == "STOPPED"
    await player.pc.close()
    screen = await publish(alice, "r", kind="screen", shade=90)
    refused = await alice.request("stream.play", stream=bobs, sdp=player.pc.localDescription.sdp)
    assert refused["info"] == "limit"

    # Unpublishing frees one.
    unpublished = await alice.request("stream.unpublish", stream=screen.stream["id"])
    assert unpublished["status"] == "UNPUBLISHED"
    await screen.pc.close()
    again = await play(alice, bobs)
    await alice.event("stream.status", timeout=10)  # PLAYING
    await again.pc.close()
    await alice.close()
    await bob.close()


async def test_a_refused_publish_and_leaving_the_room_free_peer_connections(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_HOST_IP = "127.0.0.1"
    use_host_address("127.0.0.1")
    settings.PEER_CONNECTIONS_PER_SESSION = 1
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="a")
    await alice.request("room.join", room="b")
    # The node refuses an offer it cannot read: that publish holds no place.
    unreadable = await alice.request("stream.publish", room="a", kind="camera", sdp="v=0\r\nm=video 9\r\n", timeout=10)
    assert unreadable["status"] == "FAILED" and unreadable["info"] in ("no_media", "codec_not_supported"), unreadable
    camera = await publish(alice, "a")
    refused = await alice.request("stream.publish", room="b", kind="camera", sdp=camera.pc.localDescription.sdp)
    assert (refused["status"], refused["info"]) == ("FAILED", "limit")
    # Leaving the room ends its stream, and frees its place.
    await alice.request("room.leave", room="a")
    await camera.pc.close()
    other = await publish(alice, "b", shade=30)
    await other.pc.close()
    await alice.close()
