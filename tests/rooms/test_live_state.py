"""The live-state contract, run against both backends: memory, and real
Redis under a fresh key prefix.

With Redis, "another process" is a second client on the same prefix, so
races go through Redis the way two daphne processes' would; in memory it is
the same object (one process).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable

import pytest
from django.conf import settings

from rooms.live.context import process_context, process_contexts_reset
from rooms.live.contract import JoinResult, LeaveResult, LiveState, SessionInfo
from rooms.live.memory import MemoryLiveState
from rooms.live.redis import RedisLiveState, redis_client
from rooms.live.registry import MemoryStreamRegistry, RedisStreamRegistry, StreamRecord, StreamRegistry
from rooms.media.messages import LoadReport

LEASE_MS = 100


@dataclasses.dataclass
class Live:
    """One backend as this process and any number of others see it."""

    state: LiveState
    registry: StreamRegistry
    another_process: Callable[[], tuple[LiveState, StreamRegistry]]
    kind: str


@pytest.fixture(params=["memory", "redis"])
def backend(request, settings) -> str:  # type: ignore[no-untyped-def]
    if request.param == "redis":
        request.getfixturevalue("redis_live_state")
    else:
        settings.REDIS_URL = ""
    return str(request.param)


@pytest.fixture
async def live(backend: str) -> AsyncIterator[Live]:
    context = process_context()
    clients = []

    def another_process() -> tuple[LiveState, StreamRegistry]:
        if backend == "memory":
            return context.live_state, context.stream_registry
        client = redis_client(settings.REDIS_URL)
        clients.append(client)
        return (
            RedisLiveState(client, settings.LIVE_STATE_PREFIX),
            RedisStreamRegistry(client, settings.LIVE_STATE_PREFIX),
        )

    yield Live(context.live_state, context.stream_registry, another_process, backend)
    for client in clients:
        await client.aclose()
    await context.close()


async def join(
    state: LiveState, login: str = "alice", sid: str = "", *, room: str = "r", room_id: str = "",
    record: bool = False, max_participants: int = 16, now: int = 1000, profile: str = "", max_rooms: int = 0,
) -> JoinResult:
    return await state.room_join(
        name=room, login=login, sid=sid or f"sid-{login}", new_room_id=room_id or f"id-{login}", record=record,
        max_participants=max_participants, now_ms=now, profile=profile, max_rooms=max_rooms,
    )


async def leave(
    state: LiveState, login: str = "alice", sid: str = "", *, room: str = "r", now: int = 1000,
    idle_deadline: int | None = None,
) -> LeaveResult:
    return await state.room_leave(
        name=room, login=login, sid=sid or f"sid-{login}", now_ms=now, lease_ms=LEASE_MS,
        idle_deadline_ms=idle_deadline,
    )


# --- Sessions and membership ---------------------------------------------------------


async def test_sessions_open_list_their_rooms_and_close(live: Live) -> None:
    info = SessionInfo(sid="s1", username="alice", channel="chan-1", process="p1")
    await live.state.session_open(info)
    assert await live.state.session_get("s1") == info
    assert await live.state.session_rooms("s1") == set()
    await join(live.state, sid="s1", room="a")
    await join(live.state, sid="s1", room="b")
    assert await live.state.session_rooms("s1") == {"a", "b"}
    assert await live.state.process_sessions("p1") == {"s1"}
    await live.state.session_close(info)
    assert await live.state.session_get("s1") is None
    assert await live.state.session_rooms("s1") == set()
    assert await live.state.process_sessions("p1") == set()


async def test_the_first_join_creates_the_room_and_later_ones_share_it(live: Live) -> None:
    first = await join(live.state, "alice", room_id="first", record=True)
    assert first == JoinResult(
        "joined", "first", record=True, created=True, reactivated=False, seq=1, members={"alice": "sid-alice"},
        profiles={"alice": ""}, recorded_by="alice",
    )
    second = await join(live.state, "bob", room_id="ignored", record=False)
    assert second.outcome == "joined" and second.room_id == "first" and second.record
    assert not second.created and second.seq == 2
    assert second.members == {"alice": "sid-alice", "bob": "sid-bob"}
    again = await join(live.state, "bob")
    assert again.outcome == "already" and again.seq == 2 and again.members == second.members
    assert await live.state.room_members("r") == second.members
    assert await live.state.room_members("elsewhere") == {}


async def test_the_recording_is_the_creators_for_the_life_of_the_room(live: Live) -> None:
    assert await live.state.room_recorded_by("r") == ""  # no such room
    alice = await join(live.state, "alice", record=True)
    assert alice.recorded_by == "alice" and await live.state.room_recorded_by("r") == "alice"
    # A later join asking for a record changes nothing; everyone is told who records.
    bob = await join(live.state, "bob", record=True)
    assert bob.outcome == "joined" and bob.recorded_by == "alice"
    assert (await join(live.state, "bob")).recorded_by == "alice"  # joining again
    await leave(live.state, "alice")
    assert (await join(live.state, "carol")).recorded_by == "alice"  # its starter left; it still records
    for login in ("bob", "carol"):
        await leave(live.state, login)
    assert await live.state.room_forget(name="r", room_id="id-alice")
    assert await live.state.room_recorded_by("r") == ""
    # The room's next life does not record unless its creator asks.
    dave = await join(live.state, "dave")
    assert dave.outcome == "joined" and dave.recorded_by == "" and not dave.record
    assert await live.state.room_recorded_by("r") == ""
    # A refused join names no one (nothing of the room is told).
    assert (await join(live.state, "dave", "sid-other")).recorded_by == ""


async def test_profiles_come_with_joins_and_go_with_leaves(live: Live) -> None:
    await join(live.state, "alice", profile='{"display_name": "Alice"}')
    bob = await join(live.state, "bob", profile='{"hidden": true}')
    assert bob.profiles == {"alice": '{"display_name": "Alice"}', "bob": '{"hidden": true}'}
    assert await live.state.room_profiles("r") == bob.profiles
    left = await leave(live.state, "bob")
    assert left.outcome == "left" and left.profile == '{"hidden": true}'
    assert await live.state.room_profiles("r") == {"alice": '{"display_name": "Alice"}'}


async def test_a_taken_login_names_its_holder(live: Live) -> None:
    await join(live.state, "alice", "sid-first")
    taken = await join(live.state, "alice", "sid-second")
    assert taken.outcome == "login_taken" and taken.members == {"alice": "sid-first"}


async def test_a_locked_room_refuses_joins_until_unlocked(live: Live) -> None:
    assert await live.state.room_lock(name="r", locked=True) is None  # no such room
    assert await live.state.room_status("r") is None
    first = await join(live.state, "alice")
    assert await live.state.room_status("r") == "active"
    seq = await live.state.room_lock(name="r", locked=True)
    assert seq == first.seq + 1 and await live.state.room_locked("r")
    assert (await join(live.state, "bob")).outcome == "locked"
    again = await join(live.state, "alice")
    assert again.outcome == "already" and again.locked
    assert await live.state.room_lock(name="r", locked=False) == seq + 1
    joined = await join(live.state, "bob")
    assert joined.outcome == "joined" and not joined.locked
    # The lock ends with the room's life.
    await live.state.room_lock(name="r", locked=True)
    await leave(live.state, "alice")
    await leave(live.state, "bob")
    assert await live.state.room_forget(name="r", room_id="id-alice")
    assert not await live.state.room_locked("r")
    assert (await join(live.state, "carol")).outcome == "joined"


async def test_two_concurrent_joins_for_one_login_exactly_one_wins(live: Live) -> None:
    other, _ = live.another_process()
    for attempt in range(20):
        room = f"race-{attempt}"
        results = await asyncio.gather(
            join(live.state, "alice", "sid-here", room=room), join(other, "alice", "sid-there", room=room)
        )
        assert sorted(result.outcome for result in results) == ["joined", "login_taken"]
        winner = next(result for result in results if result.outcome == "joined")
        assert await live.state.room_members(room) == winner.members
        assert len(winner.members) == 1


async def test_a_full_room_refuses_the_extra_joins(live: Live) -> None:
    other, _ = live.another_process()
    logins = [f"user{i}" for i in range(6)]
    results = await asyncio.gather(
        *(join(live.state if i % 2 else other, login, max_participants=4) for i, login in enumerate(logins))
    )
    assert sorted(result.outcome for result in results) == ["full", "full", "joined", "joined", "joined", "joined"]
    members = await live.state.room_members("r")
    assert len(members) == 4
    assert {login for login, result in zip(logins, results, strict=True) if result.outcome == "joined"} == set(members)


async def test_max_rooms_refuses_a_new_room_but_not_a_join_of_a_live_one(live: Live) -> None:
    other, _ = live.another_process()
    assert (await join(live.state, "alice", room="a", max_rooms=2)).outcome == "joined"
    assert (await join(other, "bob", room="b", max_rooms=2)).outcome == "joined"
    refused = await join(other, "carol", room="c", max_rooms=2)
    assert refused == JoinResult("server_full")
    assert await live.state.room_status("c") is None and await live.state.room_members("c") == {}
    assert (await join(other, "carol", room="a", max_rooms=2)).outcome == "joined"
    assert (await join(other, "dave", room="c")).outcome == "joined"  # 0: no limit
    # A forgotten room frees its place.
    await leave(live.state, "dave", room="c")
    assert await live.state.room_forget(name="c", room_id="id-dave")
    await leave(other, "bob", room="b")
    assert (await join(live.state, "erin", room="e", max_rooms=2)).outcome == "server_full"
    assert await other.room_forget(name="b", room_id="id-bob")
    assert (await join(live.state, "erin", room="e", max_rooms=2)).outcome == "joined"


async def test_concurrent_creations_never_pass_max_rooms(live: Live) -> None:
    other, _ = live.another_process()
    results = await asyncio.gather(
        *(join(live.state if i % 2 else other, f"user{i}", room=f"r{i}", max_rooms=3) for i in range(8))
    )
    assert sorted(result.outcome for result in results) == ["joined"] * 3 + ["server_full"] * 5


async def test_a_join_right_after_a_leave_never_sees_login_taken(live: Live) -> None:
    other, _ = live.another_process()
    await join(live.state, "bob")
    await join(live.state, "alice", "sid-0")
    for attempt in range(20):
        left = await leave(live.state, "alice", f"sid-{attempt}")
        assert left.outcome == "left"
        rejoined = await join(other, "alice", f"sid-{attempt + 1}")
        assert rejoined.outcome == "joined", rejoined
        assert rejoined.seq == left.seq + 1


async def test_leaving_a_room_one_is_not_in_changes_nothing(live: Live) -> None:
    await join(live.state, "alice")
    assert (await leave(live.state, "alice", "another-session")).outcome == "absent"
    assert (await leave(live.state, "bob")).outcome == "absent"
    assert (await leave(live.state, "alice", room="nowhere")).outcome == "absent"
    assert await live.state.room_members("r") == {"alice": "sid-alice"}


async def test_the_last_leave_finalizes_and_joins_wait_for_the_next_room(live: Live) -> None:
    first = await join(live.state, "alice", room_id="first", record=True)
    await live.state.room_chat_post(name="r", message_json='{"text": "old"}', history_length=50)
    finalize = await leave(live.state, "alice", now=1000)
    assert finalize == LeaveResult("finalize", "first", record=True, seq=first.seq + 2)
    assert (await join(live.state, "bob")).outcome == "busy"
    assert await live.state.room_forget(name="r", room_id="another-life") is False
    assert (await join(live.state, "bob")).outcome == "busy"
    assert await live.state.room_forget(name="r", room_id="first") is True
    assert await live.state.room_forget(name="r", room_id="first") is False
    fresh = await join(live.state, "bob", room_id="second")
    assert fresh == JoinResult(
        "joined", "second", created=True, seq=1, members={"bob": "sid-bob"}, profiles={"bob": ""}
    )
    # The finalizer's lease is gone with the room.
    assert await live.state.rooms_claim_due(now_ms=10_000, lease_ms=LEASE_MS, limit=10) == []


async def test_only_a_finalizing_room_is_forgotten(live: Live) -> None:
    await join(live.state, "alice", room_id="first")
    assert await live.state.room_forget(name="r", room_id="first") is False
    assert (await join(live.state, "bob")).outcome == "joined"


# --- Idle deadlines and finalization claims ------------------------------------------


async def test_a_drop_leaves_the_room_idle_until_its_deadline(live: Live) -> None:
    await join(live.state, "alice", room_id="first", record=True)
    idle = await leave(live.state, "alice", now=1000, idle_deadline=5000)
    assert idle.outcome == "idle" and idle.room_id == "first"
    assert await live.state.rooms_claim_due(now_ms=4999, lease_ms=LEASE_MS, limit=10) == []
    claimed = await live.state.rooms_claim_due(now_ms=5000, lease_ms=LEASE_MS, limit=10)
    assert [(room.name, room.room_id, room.record, room.was_idle) for room in claimed] == [("r", "first", True, True)]
    assert (await join(live.state, "bob")).outcome == "busy"
    assert await live.state.room_forget(name="r", room_id="first")


async def test_a_join_reactivates_an_idle_room(live: Live) -> None:
    await join(live.state, "alice", room_id="first")
    await leave(live.state, "alice", idle_deadline=5000)
    back = await join(live.state, "alice", "a-new-session", room_id="ignored")
    assert back.outcome == "joined" and back.room_id == "first"
    assert back.reactivated and not back.created
    assert await live.state.rooms_claim_due(now_ms=60_000, lease_ms=LEASE_MS, limit=10) == []
    assert (await leave(live.state, "alice", "a-new-session", idle_deadline=70_000)).outcome == "idle"


async def test_only_one_claimer_gets_each_due_room(live: Live) -> None:
    other, _ = live.another_process()
    rooms = [f"room-{i}" for i in range(8)]
    for room in rooms:
        await join(live.state, "alice", room=room, room_id=f"id-{room}")
        await leave(live.state, "alice", room=room, idle_deadline=2000)
    claims = await asyncio.gather(
        *(state.rooms_claim_due(now_ms=3000, lease_ms=LEASE_MS, limit=100) for state in (live.state, other) * 2)
    )
    names = [room.name for claimed in claims for room in claimed]
    assert sorted(names) == rooms


async def test_claims_respect_the_limit(live: Live) -> None:
    for room in ("a", "b", "c"):
        await join(live.state, "alice", room=room)
        await leave(live.state, "alice", room=room, idle_deadline=2000)
    first = await live.state.rooms_claim_due(now_ms=3000, lease_ms=LEASE_MS, limit=2)
    second = await live.state.rooms_claim_due(now_ms=3000, lease_ms=LEASE_MS, limit=2)
    assert len(first) == 2 and len(second) == 1
    assert {room.name for room in first + second} == {"a", "b", "c"}


async def test_an_expired_finalizer_lease_is_taken_over(live: Live) -> None:
    await join(live.state, "alice", room_id="first")
    assert (await leave(live.state, "alice", now=1000)).outcome == "finalize"
    # The finalizer holds the room until its lease ends ...
    assert await live.state.rooms_claim_due(now_ms=1000 + LEASE_MS - 1, lease_ms=LEASE_MS, limit=10) == []
    # ... then a sweep takes it over, with a lease of its own.
    taken = await live.state.rooms_claim_due(now_ms=1000 + LEASE_MS, lease_ms=LEASE_MS, limit=10)
    assert [(room.name, room.room_id, room.was_idle) for room in taken] == [("r", "first", False)]
    assert await live.state.rooms_claim_due(now_ms=1000 + 2 * LEASE_MS - 1, lease_ms=LEASE_MS, limit=10) == []
    again = await live.state.rooms_claim_due(now_ms=1000 + 2 * LEASE_MS, lease_ms=LEASE_MS, limit=10)
    assert [room.room_id for room in again] == ["first"]
    assert await live.state.room_forget(name="r", room_id="first")


# --- Processes -------------------------------------------------------------------------


async def test_dead_processes_are_claimed_once_until_their_lease_ends(live: Live) -> None:
    await live.state.process_heartbeat("old", 1000)
    await live.state.process_heartbeat("young", 5000)
    await live.state.session_open(SessionInfo("s1", "alice", "chan-1", "old"))
    assert await live.state.processes_claim_dead(dead_before_ms=3000, now_ms=6000, limit=10) == ["old"]
    # Re-scored to "now": claimed again only if it still looks dead later.
    assert await live.state.processes_claim_dead(dead_before_ms=3000, now_ms=6000, limit=10) == []
    assert sorted(await live.state.processes_claim_dead(dead_before_ms=7000, now_ms=8000, limit=10)) == [
        "old", "young"
    ]
    assert await live.state.process_sessions("old") == {"s1"}
    await live.state.process_forget("old")
    assert await live.state.process_sessions("old") == set()
    assert await live.state.processes_claim_dead(dead_before_ms=99_000, now_ms=99_000, limit=10) == ["young"]


async def test_a_heartbeat_keeps_a_process_alive(live: Live) -> None:
    await live.state.process_heartbeat("p", 1000)
    await live.state.process_heartbeat("p", 4000)
    assert await live.state.processes_claim_dead(dead_before_ms=3000, now_ms=5000, limit=10) == []


async def test_concurrent_sweepers_claim_a_dead_process_once(live: Live) -> None:
    others = [live.another_process()[0] for _ in range(3)]
    for process in ("a", "b", "c"):
        await live.state.process_heartbeat(process, 1000)
    claims = await asyncio.gather(
        *(state.processes_claim_dead(dead_before_ms=2000, now_ms=3000, limit=10) for state in [live.state, *others])
    )
    assert sorted(process for claimed in claims for process in claimed) == ["a", "b", "c"]
    limited = await live.state.processes_claim_dead(dead_before_ms=9000, now_ms=9000, limit=2)
    assert len(limited) == 2


# --- Chat and events ---------------------------------------------------------------------


async def test_chat_keeps_the_last_messages_in_order(live: Live) -> None:
    joined = await join(live.state, "alice")
    seqs = [
        await live.state.room_chat_post(name="r", message_json=f'{{"n": {n}}}', history_length=50)
        for n in range(60)
    ]
    assert seqs == list(range(joined.seq + 1, joined.seq + 61))
    bob = await join(live.state, "bob")
    assert bob.history == [f'{{"n": {n}}}' for n in range(10, 60)]
    assert bob.seq == seqs[-1] + 1
    assert (await join(live.state, "bob")).history == bob.history


async def test_events_and_private_messages_are_counted_but_not_kept(live: Live) -> None:
    joined = await join(live.state, "alice")
    public = await live.state.room_chat_post(name="r", message_json='"public"', history_length=50)
    private = await live.state.room_chat_post(name="r", message_json=None, history_length=50)
    event = await live.state.room_event_seq("r")
    assert [public, private, event] == [joined.seq + 1, joined.seq + 2, joined.seq + 3]
    bob = await join(live.state, "bob")
    assert bob.history == ['"public"'] and bob.seq == event + 1


async def test_concurrent_events_get_distinct_numbers(live: Live) -> None:
    other, _ = live.another_process()
    joined = await join(live.state, "alice")
    seqs = await asyncio.gather(*(state.room_event_seq("r") for state in (live.state, other) * 25))
    assert sorted(seqs) == list(range(joined.seq + 1, joined.seq + 51))


# --- Stream registry -----------------------------------------------------------------------


def stream(stream_id: str, participant: str = "alice", kind: str = "camera", *, room: str = "r",
           node: str = "node-1") -> StreamRecord:
    return StreamRecord(
        stream_id=stream_id, room=room, participant=participant, kind=kind, node=node,
        publisher_channel=f"chan-{participant}", payload={"id": stream_id, "kind": kind, "muted": {"audio": False}},
    )


async def test_a_publisher_has_one_stream_of_each_kind_per_room(live: Live) -> None:
    registry = live.registry
    assert await registry.stream_add(stream("cam"))
    assert not await registry.stream_add(stream("cam-2"))
    assert await registry.stream_add(stream("screen", kind="screen"))
    assert await registry.stream_add(stream("bob-cam", "bob", node="node-2"))
    assert await registry.stream_add(stream("cam-elsewhere", room="other"))
    assert await registry.stream_get("cam") == stream("cam")
    assert await registry.stream_get("cam-2") is None
    assert {record.stream_id for record in await registry.room_streams("r")} == {"cam", "screen", "bob-cam"}
    assert {record.stream_id for record in await registry.node_streams("node-1")} == {
        "cam", "screen", "cam-elsewhere"
    }


async def test_concurrent_publishes_of_one_kind_register_one_stream(live: Live) -> None:
    _, other = live.another_process()
    added = await asyncio.gather(*(registry.stream_add(stream(f"cam-{i}")) for i, registry in
                                   enumerate((live.registry, other) * 5)))
    assert added.count(True) == 1
    assert len(await live.registry.room_streams("r")) == 1


async def test_only_one_remover_gets_a_stream_and_its_slot_is_free_again(live: Live) -> None:
    _, other = live.another_process()
    await live.registry.stream_add(stream("cam"))
    removed = await asyncio.gather(live.registry.stream_remove("cam"), other.stream_remove("cam"))
    assert sorted(record is None for record in removed) == [False, True]
    assert await live.registry.stream_get("cam") is None
    assert await live.registry.room_streams("r") == []
    assert await live.registry.node_streams("node-1") == []
    assert await live.registry.stream_remove("cam") is None
    assert await live.registry.stream_add(stream("cam-again"))


async def test_a_stream_update_is_what_the_room_sees(live: Live) -> None:
    await live.registry.stream_add(stream("cam"))
    muted = dataclasses.replace(stream("cam"), payload={"id": "cam", "muted": {"audio": True}})
    await live.registry.stream_update(muted)
    assert await live.registry.stream_get("cam") == muted
    assert [record.payload for record in await live.registry.room_streams("r")] == [muted.payload]


def load(node: str, *, legs: int = 0, rooms: int = 0, cpu: float = 0.0) -> LoadReport:
    return LoadReport(node=node, published=0, played=legs, at_ms=1000, rooms=rooms, cpu=cpu)


async def test_a_room_stays_pinned_to_its_live_node(live: Live) -> None:
    _, other = live.another_process()
    await live.registry.node_heartbeat("node-1", 1000, load("node-1"))
    await live.registry.node_heartbeat("node-2", 1000, load("node-2", legs=5))
    assert await live.registry.room_node_place("r", alive_after_ms=500) == "node-1"
    # Busier now than node-2, but the room's streams are there: it stays.
    await live.registry.node_heartbeat("node-1", 1000, load("node-1", legs=50, rooms=1))
    assert await other.room_node_place("r", alive_after_ms=500) == "node-1"
    # Two processes placing a new room at once agree on one node.
    pins = await asyncio.gather(
        live.registry.room_node_place("new", alive_after_ms=500), other.room_node_place("new", alive_after_ms=500),
    )
    assert pins == ["node-2", "node-2"]


async def test_a_room_is_placed_again_when_its_node_is_dead(live: Live) -> None:
    await live.registry.node_heartbeat("node-1", 1000, load("node-1"))
    await live.registry.node_heartbeat("node-2", 3000, load("node-2", legs=10))
    assert await live.registry.room_node_place("r", alive_after_ms=500) == "node-1"
    assert await live.registry.room_node_place("r", alive_after_ms=2000) == "node-2"
    rooms = {status.node: status.rooms for status in await live.registry.nodes_status()}
    assert rooms == {"node-1": frozenset(), "node-2": {"r"}}
    assert await live.registry.room_node_place("r", alive_after_ms=500) == "node-2"
    # No live node: no place, and no pin left to a dead one.
    assert await live.registry.room_node_place("r", alive_after_ms=5000) is None
    assert all(not status.rooms for status in await live.registry.nodes_status())


async def test_a_released_room_is_placed_again(live: Live) -> None:
    await live.registry.node_heartbeat("node-1", 1000, load("node-1"))
    await live.registry.node_heartbeat("node-2", 1000, load("node-2", legs=1))
    assert await live.registry.room_node_place("r", alive_after_ms=500) == "node-1"
    await live.registry.room_node_release("r")
    assert all(not status.rooms for status in await live.registry.nodes_status())
    await live.registry.node_heartbeat("node-1", 1000, load("node-1", legs=20))
    assert await live.registry.room_node_place("r", alive_after_ms=500) == "node-2"


async def test_node_heartbeats_and_node_death(live: Live) -> None:
    _, other = live.another_process()
    await live.registry.node_heartbeat("old", 1000)
    await live.registry.node_heartbeat("young", 5000)
    assert sorted(await live.registry.nodes_alive(alive_after_ms=500)) == ["old", "young"]
    assert await live.registry.nodes_alive(alive_after_ms=3000) == ["young"]
    await live.registry.stream_add(stream("cam", node="old"))
    assert await live.registry.room_node_place("r", alive_after_ms=4000) == "young"
    await live.registry.node_drain("young", draining=True)
    assert await live.registry.room_node_place("r", alive_after_ms=500) == "young"
    await live.registry.room_node_release("r")
    assert await live.registry.room_node_place("r", alive_after_ms=500) == "old"
    claims = await asyncio.gather(
        live.registry.nodes_claim_dead(dead_before_ms=3000, now_ms=6000),
        other.nodes_claim_dead(dead_before_ms=3000, now_ms=6000),
    )
    assert sorted(claims) == [[], ["old"]]
    # Re-scored to "now": another sweep does not claim it again meanwhile.
    assert await live.registry.nodes_claim_dead(dead_before_ms=3000, now_ms=6000) == []
    assert [record.stream_id for record in await live.registry.node_streams("old")] == ["cam"]
    await live.registry.stream_remove("cam")
    await live.registry.node_forget("old")
    assert await live.registry.nodes_alive(alive_after_ms=0) == ["young"]
    assert await live.registry.node_streams("old") == []
    assert [status.node for status in await live.registry.nodes_status()] == ["young"]
    assert await live.registry.nodes_claim_dead(dead_before_ms=99_000, now_ms=99_000) == ["young"]
    # Its rooms go to the next node.
    await live.registry.node_forget("young")
    await live.registry.node_heartbeat("fresh", 99_000)
    assert await live.registry.room_node_place("r", alive_after_ms=0) == "fresh"


# --- The process context -----------------------------------------------------------------


async def test_the_context_picks_the_backend_and_shares_one_client(live: Live) -> None:
    context = process_context()
    assert context is process_context()
    assert context.live_state is live.state and context.stream_registry is live.registry
    if live.kind == "memory":
        assert isinstance(live.state, MemoryLiveState) and isinstance(live.registry, MemoryStreamRegistry)
    else:
        assert isinstance(live.state, RedisLiveState) and isinstance(live.registry, RedisStreamRegistry)
        assert live.state._redis is live.registry._redis


async def test_each_event_loop_has_its_own_context_and_reset_forgets_them(live: Live) -> None:
    context = process_context()

    async def in_another_loop() -> int:
        other = process_context()
        await other.close()
        return id(other)

    assert await asyncio.to_thread(asyncio.run, in_another_loop()) != id(context)
    await join(live.state, "alice")
    process_contexts_reset()
    fresh = process_context()
    assert fresh is not context
    if live.kind == "memory":
        assert await fresh.live_state.room_members("r") == {}
    else:  # the shared state outlives a process's objects
        assert await fresh.live_state.room_members("r") == {"alice": "sid-alice"}
        await fresh.close()


async def test_the_epoch_is_set_once_and_read_back(live: Live) -> None:
    assert await live.state.epoch_get() is None
    assert await live.state.epoch_ensure("first") == "first"
    other, _ = live.another_process()
    assert await other.epoch_ensure("second") == "first"
    assert await other.epoch_get() == "first"


async def test_a_heartbeat_says_whether_the_process_was_registered(live: Live) -> None:
    assert await live.state.process_heartbeat("p", 1000) is False
    assert await live.state.process_heartbeat("p", 2000) is True
    await live.state.process_forget("p")
    assert await live.state.process_heartbeat("p", 3000) is False
