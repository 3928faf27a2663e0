"""Placing new rooms on media nodes: the score, and both registries
choosing by it (memory, and real Redis where "another process" is a second
client racing through the same Lua script)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from rooms.live.placement import LEGS_PER_CORE, NEW_ROOM_LEGS, load_score, placement_score
from rooms.live.registry import NodeStatus
from rooms.media.messages import LoadReport
from rooms.node_drain import NodeNotFound, node_find
from tests.rooms import test_live_state
from tests.rooms.test_live_state import Live

# The live-state tests' fixtures: each test runs on memory and on Redis.
backend = test_live_state.backend
live = test_live_state.live


def load(node: str, *, published: int = 0, played: int = 0, rooms: int = 0, cpu: float = 0.0) -> LoadReport:
    return LoadReport(node=node, published=published, played=played, at_ms=1000, rooms=rooms, cpu=cpu, host="h",
                      pid=1)


def test_a_score_counts_legs_and_cpu_in_legs() -> None:
    assert load_score(load("n", published=2, played=6)) == 8
    assert load_score(load("n", published=2, played=6, cpu=0.5)) == 8 + LEGS_PER_CORE / 2
    # Rooms pinned but not yet served count as the served ones do on average
    # (at least NEW_ROOM_LEGS); served ones are in the legs already.
    assert placement_score(8, pinned_rooms=3, served_rooms=1) == 8 + 2 * 8
    assert placement_score(8, pinned_rooms=5, served_rooms=4) == 8 + NEW_ROOM_LEGS
    assert placement_score(0, pinned_rooms=2, served_rooms=0) == 2 * NEW_ROOM_LEGS
    assert placement_score(8, pinned_rooms=1, served_rooms=3) == 8


async def test_a_new_room_goes_to_the_node_with_the_fewest_legs(live: Live) -> None:
    await live.registry.node_heartbeat("node-a", 1000, load("node-a", published=3, played=9, rooms=3))
    await live.registry.node_heartbeat("node-b", 1000, load("node-b", published=1, played=2, rooms=1))
    await live.registry.node_heartbeat("node-c", 1000, load("node-c", published=2, played=8, rooms=2))
    assert await live.registry.room_node_place("new", alive_after_ms=500) == "node-b"


async def test_cpu_weighs_in(live: Live) -> None:
    # Fewer legs, but recording (or a heavy bitrate) keeps half a core busy.
    await live.registry.node_heartbeat("node-a", 1000, load("node-a", published=1, played=1, cpu=0.5))
    await live.registry.node_heartbeat("node-b", 1000, load("node-b", published=2, played=10, cpu=0.12))
    assert await live.registry.room_node_place("new", alive_after_ms=500) == "node-b"


async def test_a_dead_node_is_never_chosen_however_idle(live: Live) -> None:
    await live.registry.node_heartbeat("idle-but-dead", 400, load("idle-but-dead"))
    await live.registry.node_heartbeat("busy", 1000, load("busy", published=4, played=40, cpu=0.9))
    assert await live.registry.room_node_place("new", alive_after_ms=500) == "busy"


async def test_a_burst_of_new_rooms_spreads_exactly_before_the_next_heartbeat(live: Live) -> None:
    _, other = live.another_process()
    for node in ("node-a", "node-b", "node-c"):
        await live.registry.node_heartbeat(node, 1000, load(node))
    # Two processes placing 30 rooms at once, no heartbeat in between.
    placed = await asyncio.gather(*(
        registry.room_node_place(f"room-{i}", alive_after_ms=500)
        for i, registry in enumerate((live.registry, other) * 15)
    ))
    assert Counter(placed) == {"node-a": 10, "node-b": 10, "node-c": 10}
    statuses = {status.node: status for status in await live.registry.nodes_status()}
    assert {node: len(status.rooms) for node, status in statuses.items()} == {"node-a": 10, "node-b": 10, "node-c": 10}
    assert {status.score for status in statuses.values()} == {10 * NEW_ROOM_LEGS}


async def test_new_rooms_weigh_as_the_rooms_a_node_serves(live: Live) -> None:
    # Two nodes with a meeting of five each (25 legs); node-a's CPU reads a
    # little lower. Two new meetings start together, before any heartbeat:
    # counted as 2 legs the first would leave node-a still the lighter and
    # both would land there; counted as the meetings it serves, one each.
    _, other = live.another_process()
    for node in ("node-a", "node-b"):
        await live.registry.node_heartbeat(node, 1000, load(node))
    assert [await live.registry.room_node_place(room, alive_after_ms=500) for room in ("m-a", "m-b")] == [
        "node-a", "node-b"]
    await live.registry.node_heartbeat("node-a", 1000, load("node-a", published=5, played=20, rooms=1, cpu=0.09))
    await live.registry.node_heartbeat("node-b", 1000, load("node-b", published=5, played=20, rooms=1, cpu=0.10))
    placed = await asyncio.gather(live.registry.room_node_place("m1", alive_after_ms=500),
                                  other.room_node_place("m2", alive_after_ms=500))
    assert sorted(placed) == ["node-a", "node-b"]


async def test_pending_rooms_add_to_what_the_node_reported(live: Live) -> None:
    # node-a served 2 rooms at its heartbeat (in its 8 legs); 2 more were placed since.
    await live.registry.node_heartbeat("node-a", 1000, load("node-a", published=2, played=6, rooms=2))
    await live.registry.node_heartbeat("node-b", 1000, load("node-b", published=3, played=8, rooms=3))
    await live.registry.node_heartbeat("node-c", 1000, load("node-c", published=3, played=8, rooms=3))
    await live.registry.node_drain("node-b", draining=True)
    await live.registry.node_drain("node-c", draining=True)
    for room in ("a1", "a2", "a3", "a4"):
        assert await live.registry.room_node_place(room, alive_after_ms=500) == "node-a"
    await live.registry.node_drain("node-b", draining=False)
    # node-a: 8 legs + 2 rooms placed beyond the 2 it served, 4 legs each = 16 > node-b's 11.
    assert await live.registry.room_node_place("b1", alive_after_ms=500) == "node-b"
    # Its next heartbeat serves all four: 4 pending rooms are now legs.
    await live.registry.node_heartbeat("node-a", 1000, load("node-a", published=4, played=4, rooms=4))
    assert await live.registry.room_node_place("a5", alive_after_ms=500) == "node-a"


async def test_a_draining_node_keeps_its_rooms_and_takes_no_new_one(live: Live) -> None:
    _, other = live.another_process()
    await live.registry.node_heartbeat("node-a", 1000, load("node-a"))
    await live.registry.node_heartbeat("node-b", 1000, load("node-b", published=5, played=20, rooms=5))
    assert await live.registry.room_node_place("meeting", alive_after_ms=500) == "node-a"
    assert await other.node_drain("node-a", draining=True)
    # The meeting stays; new rooms go to the busier node.
    assert await live.registry.room_node_place("meeting", alive_after_ms=500) == "node-a"
    assert [await live.registry.room_node_place(f"new-{i}", alive_after_ms=500) for i in range(3)] == ["node-b"] * 3
    statuses = {status.node: status for status in await live.registry.nodes_status()}
    assert statuses["node-a"].draining and not statuses["node-b"].draining
    assert statuses["node-a"].rooms == {"meeting"}
    # Every node draining: nowhere to put a new room.
    await live.registry.node_drain("node-b", draining=True)
    assert await live.registry.room_node_place("nowhere", alive_after_ms=500) is None
    # The meeting ends; undone, the node takes rooms again.
    await live.registry.room_node_release("meeting")
    assert (await live.registry.nodes_status())[0].rooms == frozenset()
    assert await live.registry.node_drain("node-a", draining=False)
    assert await live.registry.room_node_place("later", alive_after_ms=500) == "node-a"
    # A heartbeat keeps the flag; only a registered node can have one.
    await live.registry.node_heartbeat("node-b", 2000, load("node-b"))
    assert (await live.registry.nodes_status())[1].draining
    assert not await live.registry.node_drain("never-heard-of", draining=True)


async def test_the_status_carries_the_last_heartbeat(live: Live) -> None:
    report = load("node-a", published=1, played=3, rooms=1, cpu=0.07)
    await live.registry.node_heartbeat("node-a", 1234, report)
    [status] = await live.registry.nodes_status()
    assert (status.node, status.beat_ms, status.load, status.draining, status.streams) == (
        "node-a", 1234, report, False, 0
    )
    assert status.score == pytest.approx(4 + LEGS_PER_CORE * 0.07)
    # Stopping writes a beat of 0 without a load: the last load stays readable.
    await live.registry.node_heartbeat("node-a", 0)
    [stopped] = await live.registry.nodes_status()
    assert (stopped.beat_ms, stopped.load) == (0, report)


def test_a_node_is_found_by_its_channel_a_unique_part_or_its_host_and_pid() -> None:
    statuses = [
        NodeStatus("conf:asgimedia.node.aa11", 1, load("x").model_copy(update={"host": "m1", "pid": 7}), False,
                   frozenset(), 0),
        NodeStatus("conf:asgimedia.node.ab22", 1, None, False, frozenset(), 0),
    ]
    assert node_find(statuses, "conf:asgimedia.node.ab22") is statuses[1]
    assert node_find(statuses, "aa11") is statuses[0]
    assert node_find(statuses, "m1:7") is statuses[0]
    with pytest.raises(NodeNotFound, match="names 2 media nodes"):
        node_find(statuses, "asgimedia.node.a")
    with pytest.raises(NodeNotFound, match="no media node 'zz'"):
        node_find(statuses, "zz")
