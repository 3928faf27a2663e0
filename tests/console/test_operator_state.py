"""Assembling the live view's state: rooms with participants and streams,
each stream's rates from its node's record, nodes and their load."""

from __future__ import annotations

import asyncio
import datetime
import statistics
import time

import pytest
from aiortc import RTCPeerConnection
from aiortc.rtp import is_rtcp

from console.operator_state import OpenRoom, RoomNow, _nodes_json, _room_json, operator_state
from rooms.live.context import process_context
from rooms.live.node_traffic import MemoryNodeTraffic, RedisNodeTraffic
from rooms.live.registry import NodeStatus, StreamRecord
from rooms.media.messages import LoadReport
from rooms.media.peer import use_host_address
from rooms.media.traffic_rates import NodeTraffic, StreamTraffic, TrackRates
from tests.media_clients import publish
from tests.wsclient import ProtocolClient

CREATED = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


def _record(stream_id: str, participant: str, node: str = "node-a", kind: str = "camera") -> StreamRecord:
    payload = {"id": stream_id, "participant": participant, "kind": kind, "audio": True, "video": kind == "camera",
               "muted": {"audio": True, "video": False}}
    return StreamRecord(stream_id, "r", participant, kind, node, "publisher-channel", payload)


def _traffic(node: str, **streams: StreamTraffic) -> NodeTraffic:
    return NodeTraffic(node=node, at_ms=1, window_ms=1000, published=len(streams), legs=3, bps_in=900_000,
                       bps_out=2_700_000, streams=streams)


def test_room_participants_streams_and_rates() -> None:
    room = OpenRoom(name="r", live_id="L", status="ACTIVE", record=True, created_at=CREATED,
                    joined_at={"alice": CREATED, "bob": CREATED})
    now = RoomNow(
        room=room, status="active", members=["alice", "bob"],
        profiles={"alice": '{"display_name": "Alice A.", "metadata": "", "hidden": false}'},
        # carol left a moment ago; her screen has not ended yet.
        streams=[_record("s1", "alice"), _record("s2", "alice", kind="screen"), _record("s3", "carol")],
    )
    rates = StreamTraffic(players=2, tracks={"video": TrackRates(800_000, 29.9, 0.01),
                                             "audio": TrackRates(40_000, 50.0, 0.0)})
    state = _room_json(now, {"node-a": _traffic("node-a", s1=rates)}, {"r": "node-a"})
    assert (state["name"], state["status"], state["record"], state["node"]) == ("r", "active", True, "node-a")
    alice, bob, carol = state["participants"]
    assert (alice["login"], alice["display_name"], alice["present"]) == ("alice", "Alice A.", True)
    assert alice["joined_at"] == CREATED.isoformat()
    camera, screen = alice["streams"]
    assert camera == {
        "id": "s1", "kind": "camera", "node": "node-a", "audio": True, "video": True,
        "muted": {"audio": True, "video": False}, "players": 2, "bps": 840_000,
        "tracks": {"video": {"bps": 800_000, "fps": 29.9, "loss": 0.01}, "audio": {"bps": 40_000, "fps": 50.0,
                                                                                    "loss": 0.0}},
    }
    # Not measured yet: no figures rather than zeros.
    assert (screen["kind"], screen["players"], screen["bps"], screen["tracks"]) == ("screen", None, None, {})
    assert bob == {"login": "bob", "display_name": "", "present": True, "joined_at": CREATED.isoformat(),
                   "streams": []}
    assert (carol["present"], carol["joined_at"], [s["id"] for s in carol["streams"]]) == (False, None, ["s3"])


def test_a_room_the_live_state_lost_keeps_the_database_status() -> None:
    room = OpenRoom(name="r", live_id="L", status="IDLE", record=False, created_at=CREATED)
    state = _room_json(RoomNow(room=room, status=None, members=[], profiles={}, streams=[]), {}, {})
    assert (state["status"], state["node"], state["participants"]) == ("idle", None, [])


def test_a_room_is_on_the_node_it_is_pinned_to_else_its_streams_node() -> None:
    room = OpenRoom(name="r", live_id="L", status="ACTIVE", record=False, created_at=CREATED)
    now = RoomNow(room=room, status="active", members=["a"], profiles={}, streams=[_record("s1", "a", node="node-b")])
    assert _room_json(now, {}, {"r": "node-a"})["node"] == "node-a"
    assert _room_json(now, {}, {})["node"] == "node-b"


def test_nodes_with_and_without_a_record() -> None:
    heartbeat = LoadReport(node="node-a", published=2, played=3, at_ms=1, rooms=2, cpu=0.25, host="h1", pid=42)
    nodes = [
        NodeStatus(node="node-a", beat_ms=1, load=heartbeat, draining=False, rooms=frozenset({"r1", "r2"}),
                   streams=3),
        NodeStatus(node="node-b", beat_ms=1, load=None, draining=True, rooms=frozenset(), streams=0),
    ]
    assert _nodes_json(nodes, {"node-a": _traffic("node-a")}) == [
        {"node": "node-a", "host": "h1", "pid": 42, "draining": False, "rooms": 2, "cpu": 0.25, "published": 0,
         "legs": 3, "bps_in": 900_000, "bps_out": 2_700_000, "at_ms": 1},
        {"node": "node-b", "host": "", "pid": 0, "draining": True, "rooms": 0, "cpu": None, "published": None,
         "legs": None, "bps_in": None, "bps_out": None, "at_ms": None},
    ]


def test_node_traffic_survives_its_json() -> None:
    traffic = _traffic("node-a", s1=StreamTraffic(players=1, tracks={"video": TrackRates(1, 2.5, 0.125)}))
    assert NodeTraffic.from_json(traffic.to_json()) == traffic


async def test_memory_records_expire() -> None:
    store = MemoryNodeTraffic()
    await store.node_traffic_put(_traffic("node-a"), ttl_ms=10_000)
    await store.node_traffic_put(_traffic("node-b"), ttl_ms=1)
    await asyncio.sleep(0.01)
    assert list(await store.node_traffic_get(["node-a", "node-b", "node-c"])) == ["node-a"]


async def test_redis_records_expire(redis_live_state: str) -> None:
    store = process_context().node_traffic
    assert isinstance(store, RedisNodeTraffic)
    await store.node_traffic_put(_traffic("node-a"), ttl_ms=10_000)
    await store.node_traffic_put(_traffic("node-b"), ttl_ms=50)
    await asyncio.sleep(0.1)
    found = await store.node_traffic_get(["node-a", "node-b"])
    assert found == {"node-a": _traffic("node-a")}
    assert await store.node_traffic_get([]) == {}
    await process_context().close()


def video_packets_lost(pc: RTCPeerConnection, every: int) -> None:
    """Drop every ``every``-th RTP packet ``pc`` sends on its video SSRC (not its
    retransmissions, not audio), as a lossy uplink would."""
    video = next(sender for sender in pc.getSenders() if sender.kind == "video")
    media_ssrc = video._ssrc
    transport = video.transport
    send = transport._send_rtp
    sent = 0

    async def send_lossy(data: bytes) -> None:
        nonlocal sent
        if not is_rtcp(data) and int.from_bytes(data[8:12], "big") == media_ssrc:
            sent += 1
            if sent % every == 0:
                return
        await send(data)

    transport._send_rtp = send_lossy


@pytest.mark.django_db(transaction=True)
async def test_a_lossy_uplink_reads_as_loss(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_HOST_IP = "127.0.0.1"
    use_host_address("127.0.0.1")
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="lossy")
    camera = await publish(alice, "lossy")
    video_packets_lost(camera.pc, every=5)  # one video packet in five never arrives

    async def video_loss() -> float:
        [room] = (await operator_state())["rooms"]
        [stream] = room["participants"][0]["streams"]
        return float(stream["tracks"].get("video", {}).get("loss", 0.0))

    deadline = time.monotonic() + 10
    losses = [await video_loss()]
    while losses[-1] < 0.05 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        losses.append(await video_loss())
    # A window holds a few dozen video packets: the median of the next windows.
    losses = []
    for _ in range(5):
        await asyncio.sleep(0.5)
        losses.append(await video_loss())
    # The retransmissions come on the RTX SSRC: the media SSRC keeps its gaps.
    assert 0.15 <= statistics.median(losses) <= 0.25, losses
    await alice.close()
    await camera.close()
