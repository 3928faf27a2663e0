"""WHIP and WHEP against real processes: two daphne processes and a
separate media node on Redis and PostgreSQL, a WHIP client and a WHEP
client written from the RFCs (tests/whip_client.py), and WebSocket
participants who see the WHIP publisher as anyone else."""

from __future__ import annotations

import asyncio

import pytest

from rooms.media.peer import use_host_address
from tests.media_clients import play
from tests.whip_client import WhipError, whep_play, whip_publish
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

WHIP_TOKEN = "a-whip-secret-for-the-integration-tests"
ENV = {"MEDIA_NODES": "external", "WHIP_TOKEN": WHIP_TOKEN}


@pytest.fixture(autouse=True)
def loopback_media() -> None:
    use_host_address("127.0.0.1")


async def frames_advance(player, seconds: float = 1.0) -> None:  # type: ignore[no-untyped-def]
    """Frames arrive, and keep coming with counters going up."""
    await player.wait_for(lambda: len(player.counters) >= 10, 15)
    start = len(player.counters)
    await asyncio.sleep(seconds)  # the measurement window
    numbers = [number for _, number in player.counters[start:]]
    assert len(numbers) >= 15 * seconds, len(numbers)
    assert numbers == sorted(numbers) and numbers[-1] > numbers[0]


async def test_whip_publisher_seen_played_and_deleted_across_processes(start_server) -> None:  # type: ignore[no-untyped-def]
    node = start_server("medianode", "node", env=ENV)
    node.wait_for_log("media node ready")
    a = start_server("daphne", "web-a", env=ENV)
    b = start_server("daphne", "web-b", env=ENV)
    with pytest.raises(WhipError) as refused:
        await whip_publish(f"{a.http_url}whip/whip-stage", "not-the-token")
    assert refused.value.status == 401 and '"error": "token_invalid"' in refused.value.body
    with pytest.raises(WhipError) as refused:
        await whep_play(f"{a.http_url}whep/whip-stage/0123456789abcdef", WHIP_TOKEN)
    assert refused.value.status == 404 and '"error": "unknown_stream"' in refused.value.body
    bob = await SocketClient.connected(b.ws_url, "bob")
    await bob.request("room.join", room="whip-stage")

    # The encoder publishes through one process...
    obs = await whip_publish(f"{a.http_url}whip/whip-stage", WHIP_TOKEN)
    assert obs.url.startswith(f"{a.http_url}whip/whip-stage/")
    joined = await bob.event("room.joined", timeout=10)
    name = joined["participant"]["name"]
    assert name.startswith("whip-")
    stream = (await bob.event("room.published", timeout=15))["stream"]
    assert stream["participant"] == name and stream["audio"] and stream["video"]
    assert obs.etag == f'"{stream["id"]}"'

    # ...a participant of the other plays it like any camera...
    player = await play(bob, stream["id"])
    assert (await bob.event("stream.status", timeout=10))["status"] == "PLAYING"
    await frames_advance(player)

    # ...and so does a WHEP player, with no WebSocket at all.
    viewer = await whep_play(f"{b.http_url}whep/whip-stage/{stream['id']}", WHIP_TOKEN)
    assert viewer.player is not None
    await frames_advance(viewer.player)
    assert await viewer.delete() == 200
    await viewer.close()

    # DELETE works on any process (as behind a load balancer): here the
    # other one, which holds neither the publisher nor its media.
    obs.url = obs.url.replace(a.http_url, b.http_url)
    assert await obs.delete() == 200
    assert (await bob.event("room.unpublished", timeout=5))["stream"]["id"] == stream["id"]
    left = await bob.event("room.left", timeout=5)
    assert left["participant"] == {"name": name} and left["reason"] == "leave"
    assert await obs.delete() == 404
    await obs.close()
    await player.pc.close()

    # An encoder that just goes (no DELETE): its media ends, and so does its presence.
    gone = await whip_publish(f"{a.http_url}whip/whip-stage", WHIP_TOKEN)
    name = (await bob.event("room.joined", timeout=10))["participant"]["name"]
    await bob.event("room.published", timeout=15)
    await gone.close()
    await bob.event("room.unpublished", timeout=10)
    left = await bob.event("room.left", timeout=5)
    assert left["participant"] == {"name": name} and left["reason"] == "disconnect"

    # The process holding a publisher dies: a sweep elsewhere drops it, no ghost stays.
    orphan = await whip_publish(f"{a.http_url}whip/whip-stage", WHIP_TOKEN)
    name = (await bob.event("room.joined", timeout=10))["participant"]["name"]
    await bob.event("room.published", timeout=15)
    a.kill()
    await bob.event("room.unpublished", timeout=10)
    left = await bob.event("room.left", timeout=5)
    assert left["participant"] == {"name": name} and left["reason"] == "disconnect"
    carol = await SocketClient.connected(b.ws_url, "carol")
    state = await carol.request("room.join", room="whip-stage")
    assert [participant["name"] for participant in state["participants"]] == ["bob"]
    await orphan.close()
    for client in (bob, carol):
        await client.close()
