"""Recording consent: a joiner of a recorded room learns who records it in
the join reply (before any media can flow), and everyone in it is told when
the recording stops with the room. Services called directly: live state in
memory, events on the channel layer."""

from __future__ import annotations

import pytest

from rooms import moderation, services
from tests.rooms.test_services import connected, events_of, joined

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_join_reply_names_who_records_the_room() -> None:
    alice, bob, carol = await connected("alice"), await connected("bob"), await connected("carol")
    created = await joined(alice, "board", record=True)
    assert created["record"] is True and created["recorded_by"] == "alice"
    # bob asks for no record and is told the room records anyway; carol's ask changes nothing.
    assert (await joined(bob, "board"))["recorded_by"] == "alice"
    assert (await joined(carol, "board", record=True))["recorded_by"] == "alice"
    plain = await joined(bob, "plain")
    assert plain["record"] is False and "recorded_by" not in plain


async def test_ending_a_recorded_room_says_the_recording_stopped_before_the_end() -> None:
    alice, bob = await connected("alice"), await connected("bob")
    await joined(alice, "board", record=True)
    await joined(bob, "board")
    await events_of(alice)
    assert await moderation.room_end(room="board", by="alice")
    stopped = {"type": "room.recording", "room": "board", "recording": False, "by": "alice"}
    for session in (alice, bob):
        received = [event for event in await events_of(session) if event["type"].startswith("room.")]
        types = [event["type"] for event in received]
        assert stopped in received, received
        assert types.index("room.recording") < types.index("room.finalized"), types


async def test_ending_a_room_that_does_not_record_says_nothing_of_recording() -> None:
    alice = await connected("alice")
    await joined(alice, "plain")
    assert await services.room_finalize_now(name="plain", live_id=alice.rooms["plain"].room_id)
    assert [event["type"] for event in await events_of(alice)] == ["room.finalized"]
