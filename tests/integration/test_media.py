"""Media across processes: two daphne processes with Redis, embedded media
nodes or a separate `runmedianode`, real aiortc clients over loopback."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from aioice.stun import RETRY_MAX

from rooms.media.peer import use_host_address
from tests.media_clients import play, publish, publisher_offer
from tests.rooms.media.test_ice_limits import (
    DENIED,
    INVALID_HOSTS,
    candidate,
    listeners,
    loopback_hosts,
    with_candidates,
)
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def loopback_media() -> None:
    use_host_address("127.0.0.1")


async def assert_frames_flow(player, seconds: float = 2.0, min_fps: float = 20) -> None:  # type: ignore[no-untyped-def]
    await player.wait_for(lambda: len(player.counters) >= 10, 15)
    start = len(player.counters)
    await asyncio.sleep(seconds)  # the measurement window
    window = player.counters[start:]
    fps = len(window) / seconds
    numbers = [number for _, number in window]
    assert fps >= min_fps, fps
    assert numbers == sorted(numbers) and numbers[-1] > numbers[0]


async def test_publisher_on_one_process_player_on_the_other(start_server) -> None:  # type: ignore[no-untyped-def]
    a, b = start_server("daphne", "web-a"), start_server("daphne", "web-b")
    alice = await SocketClient.connected(a.ws_url, "alice")
    bob = await SocketClient.connected(b.ws_url, "bob")
    await alice.request("room.join", room="media")
    await bob.request("room.join", room="media")
    camera = await publish(alice, "media")
    assert (await bob.event("room.published", timeout=10))["stream"]["id"] == camera.stream["id"]
    player = await play(bob, camera.stream["id"])
    assert (await bob.event("stream.status", timeout=10))["status"] == "PLAYING"
    await assert_frames_flow(player)
    assert player.sizes == {(640, 480)}
    await alice.close()  # the publisher drops: its stream ends for everyone
    assert (await bob.event("room.unpublished", timeout=15))["stream"]["id"] == camera.stream["id"]
    await camera.close()
    await player.pc.close()
    await bob.close()


async def test_separate_media_node_and_its_death(start_server) -> None:  # type: ignore[no-untyped-def]
    node = start_server("medianode", "node", env={"MEDIA_NODES": "external"})
    node.wait_for_log("media node ready")
    a = start_server("daphne", "web-a", env={"MEDIA_NODES": "external"})
    b = start_server("daphne", "web-b", env={"MEDIA_NODES": "external"})
    alice = await SocketClient.connected(a.ws_url, "alice")
    bob = await SocketClient.connected(b.ws_url, "bob")
    await alice.request("room.join", room="noded")
    await bob.request("room.join", room="noded")
    camera = await publish(alice, "noded")
    player = await play(bob, camera.stream["id"])
    await assert_frames_flow(player)

    node.kill()
    failed = await alice.event("stream.status", timeout=15)
    assert failed == {"type": "stream.status", "stream": camera.stream["id"], "status": "FAILED",
                      "info": "node_failed"}
    assert (await bob.event("room.unpublished", timeout=15))["stream"]["id"] == camera.stream["id"]
    # With no node left, a new publish is refused clearly.
    refused = await alice.request("stream.publish", room="noded", kind="camera", sdp=camera.pc.localDescription.sdp)
    assert refused["status"] == "FAILED" and refused["info"] == "node_unavailable"
    await camera.close()
    await player.pc.close()
    await alice.close()
    await bob.close()


async def test_a_hostile_offer_reaches_at_most_the_cap_of_addresses(start_server) -> None:  # type: ignore[no-untyped-def]
    """A publish whose offer names 300 sockets of the test on 300 loopback
    addresses, 100 on a network the server denies and 200 invalid
    addresses: in the first seconds of ICE the server's checks reach at
    most MEDIA_MAX_REMOTE_CANDIDATES of them, none on the denied network."""
    cap = 8
    server = start_server("daphne", "web", env={
        "MEDIA_MAX_REMOTE_CANDIDATES": str(cap), "MEDIA_DENIED_PEER_NETWORKS": str(DENIED),
    })
    alice = await SocketClient.connected(server.ws_url, "alice")
    await alice.request("room.join", room="hostile")
    publisher, offer = await publisher_offer()
    with listeners(loopback_hosts("127.1.0.0/16", 300) + loopback_hosts(str(DENIED), 100)) as sockets:
        invalid = list(INVALID_HOSTS.values())
        lines = [candidate(i, host, port) for i, (host, port) in enumerate(sockets.addresses)]
        lines += [candidate(400 + i, invalid[i % len(invalid)], 40000 + i) for i in range(200)]
        hostile = with_candidates(offer, lines)
        answer = await alice.request("stream.publish", room="hostile", kind="camera", sdp=hostile, timeout=10)
        assert answer["type"] == "stream.answer", answer
        # The measurement window: uncapped, the server would have started
        # checks to about 150 addresses (one every 20 ms) by its end.
        await asyncio.sleep(3)
        sockets.drain()
    await publisher.pc.close()
    await alice.close()

    requests = sockets.requests()
    assert 0 < len(requests) <= cap, len(requests)
    assert set(requests) <= set(sockets.addresses[:300])
    assert not [address for address in sockets.received if ipaddress.ip_address(address[0]) in DENIED]
    sent_bytes = sum(len(data) for datagrams in sockets.received.values() for data in datagrams)
    assert sent_bytes <= cap * (1 + RETRY_MAX) * 150, sent_bytes
