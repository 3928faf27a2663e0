"""The history outbox: writes applied in order, once, however often an
entry is applied again (a drainer that died before removing it)."""

from __future__ import annotations

import pytest

from rooms.history import ChatRecord
from rooms.history_outbox import HistoryOutbox, chat_entry
from rooms.live.context import process_context
from rooms.live.outbox import MemoryOutboxStore
from rooms.models import ChatMessage, Participant, Room

pytestmark = pytest.mark.django_db(transaction=True)

JOIN = {"live_id": "a" * 32, "room_name": "r", "record": False, "created": True, "reactivated": False,
        "login": "alice", "session": "s1", "joined_seq": 1, "at_ms": 1_764_000_000_000}
LEAVE = {"live_id": "a" * 32, "login": "alice", "session": "s1", "reason": "disconnect", "room_idle": True,
         "at_ms": 1_764_000_005_000}
REJOIN = {**JOIN, "created": False, "reactivated": True, "joined_seq": 3, "at_ms": 1_764_000_009_000}
CHAT = chat_entry(ChatRecord(live_id="a" * 32, public_id="m" * 32, seq=2, sender="alice", recipients=None,
                             text="hello", sent_at_ms=1_764_000_001_000))


async def queue(outbox: HistoryOutbox) -> None:
    await outbox.write("participant_join", **JOIN)
    await outbox.write("chat_message", **CHAT)
    await outbox.write("participant_leave", **LEAVE)
    await outbox.write("participant_join", **REJOIN)


@pytest.mark.parametrize("live", ["memory", "redis"])
async def test_entries_applied_again_change_nothing(live: str, request: pytest.FixtureRequest) -> None:
    if live == "redis":
        request.getfixturevalue("redis_live_state")
    outbox = process_context().history_outbox
    await queue(outbox)
    await outbox.flush(timeout=10)
    assert await outbox.pending() == 0
    # A drainer that died after its commit and before removing the entries:
    # the next one applies them all again.
    await queue(outbox)
    await outbox.flush(timeout=10)
    assert await outbox.pending() == 0

    rows = [(p.joined_seq, p.left_at is not None) async for p in Participant.objects.order_by("joined_seq")]
    # The replayed leave closes the first join only, not the rejoin after it.
    assert rows == [(1, True), (3, False)]
    first = await Participant.objects.aget(joined_seq=1)
    assert first.joined_at.timestamp() == 1_764_000_000 and first.left_at.timestamp() == 1_764_000_005
    assert await ChatMessage.objects.acount() == 1
    assert (await Room.objects.aget(live_id="a" * 32)).status == Room.Status.ACTIVE


async def test_an_entry_that_can_never_apply_is_dropped_and_the_rest_applied() -> None:
    outbox = HistoryOutbox(MemoryOutboxStore())
    # A chat message of a room never recorded is skipped; a write of an
    # unknown kind (another version) is logged and dropped.
    await outbox.write("no_such_write", anything=1)
    await outbox.write("participant_join", **JOIN)
    await outbox.flush(timeout=10)
    assert await outbox.pending() == 0
    assert await Participant.objects.acount() == 1


@pytest.mark.parametrize("live", ["memory", "redis"])
async def test_a_drain_begins_only_on_entries_and_a_free_lock(live: str, request: pytest.FixtureRequest) -> None:
    if live == "redis":
        request.getfixturevalue("redis_live_state")
    store = process_context().history_outbox.store
    assert await store.take("one", 10_000, 2) == (0, [])
    for entry in ("e1", "e2", "e3"):
        await store.push(entry)
    # The length, the first two entries, and the lock: another drainer gets nothing.
    assert await store.take("one", 10_000, 2) == (3, ["e1", "e2"])
    assert await store.take("two", 10_000, 2) == (-1, [])
    await store.unlock("one")
    assert await store.take("two", 10_000, 5) == (3, ["e1", "e2", "e3"])
    assert await store.ack(first="e1", count=3)
    await store.unlock("two")
