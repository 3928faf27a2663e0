"""Room services called directly: live state in memory, history in the database, events on the channel layer.

The consumer tests drive the same services through the wire protocol; these
check each action's side effects together, as the services leave them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import get_channel_layer

from rooms import services
from rooms.live.context import process_context
from rooms.media.timing import now_ms
from rooms.models import ChatMessage, Participant, Room
from rooms.server_messages import ServerMessage
from rooms.session import ServiceError, Session
from rooms.signals import room_finalized

pytestmark = pytest.mark.django_db(transaction=True)

PROCESS = "web-1"
# How long a test waits for an event that should not come.
QUIET_S = 0.2


async def connected(username: str, process: str = PROCESS) -> Session:
    channel = await get_channel_layer().new_channel()
    session, reply = await services.session_connect(
        channel=channel, process=process, username=username, resume=None, request_id=None
    )
    assert session is not None, reply
    return session


def wire(reply: ServerMessage) -> dict[str, Any]:
    return reply.frame()


async def joined(session: Session, room: str, *, record: bool = False) -> dict[str, Any]:
    reply = wire(await services.room_join(session=session, room=room, record=record, request_id=None))
    assert reply["type"] == "room.state", reply
    return reply


async def events_of(session: Session) -> list[dict[str, Any]]:
    """What the session's connection would pass on to its client so far, oldest first."""
    layer = get_channel_layer()
    received = []
    while True:
        try:
            message = await asyncio.wait_for(layer.receive(session.info.channel), QUIET_S)
        except TimeoutError:
            return received
        if message["type"] != "room.event":
            received.append(message)
        elif message["exclude"] != session.info.channel:
            received.append(message["event"])


async def open_logins(room: str) -> set[str]:
    rows = Participant.objects.filter(room__name=room, left_at__isnull=True).values_list("login", flat=True)
    return {login async for login in rows}


@pytest.fixture
def finalized_rooms() -> Iterator[list[str]]:
    """The live ids of the rooms finalized during the test, in order."""
    fired: list[str] = []

    def receiver(sender: object, room: Room, **kwargs: object) -> None:
        fired.append(room.live_id)

    room_finalized.connect(receiver)
    yield fired
    room_finalized.disconnect(receiver)


# --- room_join -------------------------------------------------------------------------------------------------------


async def test_a_join_opens_the_room_and_tells_its_members() -> None:
    alice, bob = await connected("alice"), await connected("bob")
    state = wire(await services.room_join(session=alice, room="r", record=True, request_id="j1"))
    assert state["type"] == "room.state" and state["re"] == "j1" and state["room"] == "r"
    assert state["record"] is True and state["participants"] == [] and state["history"] == []
    assert state["records_url"]

    state = wire(await services.room_join(session=bob, room="r", record=False, request_id="j2"))
    assert state["participants"] == [{"name": "alice", "streams": []}]
    assert state["record"] is True  # the room's, set by whoever opened it
    assert alice.rooms["r"].room_id == bob.rooms["r"].room_id
    assert await events_of(alice) == [
        {"type": "room.joined", "room": "r", "participant": {"name": "bob", "streams": []}}
    ]
    assert await events_of(bob) == []
    room = await Room.objects.aget(name="r")
    assert room.status == Room.Status.ACTIVE and room.record is True and room.live_id == alice.rooms["r"].room_id
    assert await open_logins("r") == {"alice", "bob"}


async def test_joining_again_answers_the_state_and_tells_nobody() -> None:
    alice, bob = await connected("alice"), await connected("bob")
    await joined(alice, "r")
    await joined(bob, "r")
    await events_of(alice)
    again = await joined(bob, "r")
    assert again["participants"] == [{"name": "alice", "streams": []}]
    assert await events_of(alice) == []
    assert await Participant.objects.filter(login="bob").acount() == 1


@pytest.mark.parametrize("room", ["", ".hidden", "a b", "x" * 129])
async def test_an_invalid_room_name_is_refused(room: str) -> None:
    alice = await connected("alice")
    reply = wire(await services.room_join(session=alice, room=room, record=False, request_id="j"))
    assert reply["type"] == "room.failed" and reply["code"] == "invalid_room" and reply["re"] == "j"
    assert alice.rooms == {}
    assert await Room.objects.acount() == 0


async def test_a_taken_login_and_a_full_room_are_refused_and_hear_nothing(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_MAX_PARTICIPANTS = 2
    alice, alice_again, bob, carol = [await connected(name) for name in ("alice", "alice", "bob", "carol")]
    await joined(alice, "r")
    taken = wire(await services.room_join(session=alice_again, room="r", record=False, request_id=None))
    assert taken["type"] == "room.failed" and taken["code"] == "login_taken"
    await joined(bob, "r")
    full = wire(await services.room_join(session=carol, room="r", record=False, request_id=None))
    assert full["type"] == "room.failed" and full["code"] == "room_full"
    assert alice_again.rooms == {} and carol.rooms == {}
    assert await open_logins("r") == {"alice", "bob"}
    # Refused joiners are not left in the room's group.
    await services.chat_message_send(session=alice, room="r", text="hello", to=None, request_id=None)
    assert await events_of(alice_again) == [] and await events_of(carol) == []


async def test_a_join_waits_for_the_previous_life_of_the_room_to_end() -> None:
    state = process_context().live_state
    alice, bob = await connected("alice"), await connected("bob")
    await joined(alice, "r")
    # Emptied by a leave whose finalizer has not yet written the history.
    ending = await state.room_leave(
        name="r", login="alice", sid=alice.sid, now_ms=now_ms(), lease_ms=10_000, idle_deadline_ms=None
    )
    assert ending.outcome == "finalize"
    join = asyncio.create_task(services.room_join(session=bob, room="r", record=False, request_id=None))
    await asyncio.sleep(0.1)
    assert not join.done()
    assert await state.room_forget(name="r", room_id=ending.room_id)
    reply = wire(await asyncio.wait_for(join, 5))
    assert reply["type"] == "room.state" and reply["participants"] == []
    assert bob.rooms["r"].room_id != ending.room_id


async def test_a_join_gives_up_on_a_room_that_stays_closing(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "JOIN_WAIT_SECONDS", 0.2)
    state = process_context().live_state
    alice, bob = await connected("alice"), await connected("bob")
    await joined(alice, "r")
    await state.room_leave(
        name="r", login="alice", sid=alice.sid, now_ms=now_ms(), lease_ms=10_000, idle_deadline_ms=None
    )
    reply = wire(await services.room_join(session=bob, room="r", record=False, request_id="j"))
    assert reply["type"] == "room.failed" and reply["code"] == "try_again" and reply["re"] == "j"
    assert bob.rooms == {}


# --- room_leave ------------------------------------------------------------------------------------------------------


async def test_leaving_a_room_not_joined_is_refused() -> None:
    alice = await connected("alice")
    with pytest.raises(ServiceError) as refused:
        await services.room_leave(session=alice, room="r", request_id=None)
    assert refused.value.code == "not_in_room"


async def test_a_leave_tells_the_others_and_the_last_leave_finalizes(finalized_rooms: list[str]) -> None:
    alice, bob = await connected("alice"), await connected("bob")
    await joined(alice, "r")
    await joined(bob, "r")
    live_id = alice.rooms["r"].room_id
    await events_of(alice)

    assert wire(await services.room_leave(session=bob, room="r", request_id="l1")) == {"type": "ok", "re": "l1"}
    assert bob.rooms == {}
    assert await events_of(alice) == [
        {"type": "room.left", "room": "r", "participant": {"name": "bob"}, "reason": "leave"}
    ]
    bob_row = await Participant.objects.aget(login="bob")
    assert bob_row.left_at is not None and bob_row.leave_reason == Participant.LeaveReason.LEAVE
    assert (await Room.objects.aget(live_id=live_id)).status == Room.Status.ACTIVE
    assert finalized_rooms == []

    # The last explicit leave finalizes before it answers.
    assert wire(await services.room_leave(session=alice, room="r", request_id=None))["type"] == "ok"
    room = await Room.objects.aget(live_id=live_id)
    assert room.status == Room.Status.FINALIZED and room.finalized_at is not None
    assert finalized_rooms == [live_id]
    assert await process_context().live_state.room_members("r") == {}
    # The name is free for the room's next life.
    await joined(bob, "r")
    assert bob.rooms["r"].room_id != live_id


# --- chat_message_send -----------------------------------------------------------------------------------------------


async def test_chat_needs_the_room() -> None:
    alice = await connected("alice")
    with pytest.raises(ServiceError) as refused:
        await services.chat_message_send(session=alice, room="r", text="hi", to=None, request_id=None)
    assert refused.value.code == "not_in_room"


async def test_chat_is_rate_limited_per_connection(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHAT_RATE_BURST = 2
    settings.CHAT_RATE_PER_SECOND = 0.01
    alice, bob = await connected("alice"), await connected("bob")
    await joined(alice, "r")
    await joined(bob, "r")
    for text in ("one", "two"):
        reply = wire(await services.chat_message_send(session=alice, room="r", text=text, to=None, request_id="c"))
        assert reply["type"] == "ok" and reply["re"] == "c" and reply["message"]
    with pytest.raises(ServiceError) as refused:
        await services.chat_message_send(session=alice, room="r", text="three", to=None, request_id=None)
    assert refused.value.code == "rate_limited"
    # Another connection has its own allowance.
    await services.chat_message_send(session=bob, room="r", text="bob's", to=None, request_id=None)
    texts = [text async for text in ChatMessage.objects.order_by("seq").values_list("text", flat=True)]
    assert texts == ["one", "two", "bob's"]


async def test_a_private_message_reaches_its_recipients_and_its_sender_only() -> None:
    alice, bob, carol = [await connected(name) for name in ("alice", "bob", "carol")]
    for session in (alice, bob, carol):
        await joined(session, "r")
    for session in (alice, bob, carol):
        await events_of(session)
    reply = wire(await services.chat_message_send(
        session=alice, room="r", text="psst", to=["bob", "nobody"], request_id=None
    ))
    for session in (alice, bob):
        [event] = await events_of(session)
        assert event["type"] == "room.message" and event["message"]["id"] == reply["message"]
        assert event["message"]["to"] == ["bob"] and event["message"]["from"] == "alice"
    assert await events_of(carol) == []
    stored = await ChatMessage.objects.aget(public_id=reply["message"])
    assert stored.recipients == ["bob"] and stored.text == "psst" and stored.sender == "alice"

    with pytest.raises(ServiceError) as refused:
        await services.chat_message_send(session=alice, room="r", text="x", to=["nobody"], request_id=None)
    assert refused.value.code == "unknown_participant"


async def test_a_joiner_gets_the_last_public_messages_only(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHAT_HISTORY_LENGTH = 3
    alice, bob = await connected("alice"), await connected("bob")
    await joined(alice, "r")
    await joined(bob, "r")
    for number in range(5):
        await services.chat_message_send(session=alice, room="r", text=f"m{number}", to=None, request_id=None)
    await services.chat_message_send(session=alice, room="r", text="private", to=["bob"], request_id=None)
    carol = await connected("carol")
    state = await joined(carol, "r")
    assert [message["text"] for message in state["history"]] == ["m2", "m3", "m4"]
    assert await ChatMessage.objects.acount() == 6


# --- rooms_sweep and room_finalize_now -------------------------------------------------------------------------------


async def test_a_dropped_room_is_finalized_by_one_sweep_once(settings, finalized_rooms: list[str]) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_IDLE_TIMEOUT_MS = 1000
    alice = await connected("alice")
    await joined(alice, "r")
    live_id = alice.rooms["r"].room_id
    await services.session_close(session=alice)
    room = await Room.objects.aget(live_id=live_id)
    assert room.status == Room.Status.IDLE and room.idle_since is not None
    assert await services.rooms_sweep() == 0  # before its deadline
    await asyncio.sleep(1.05)
    assert await services.rooms_sweep() == 1
    assert await services.rooms_sweep() == 0
    assert (await Room.objects.aget(live_id=live_id)).status == Room.Status.FINALIZED
    assert finalized_rooms == [live_id]


async def test_a_sweep_drops_the_sessions_of_a_process_that_stopped(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PRESENCE_TTL_MS = 1000
    settings.ROOM_IDLE_TIMEOUT_MS = 60_000
    state = process_context().live_state
    alice, bob = await connected("alice", process="web-dead"), await connected("bob")
    await joined(alice, "r")
    await joined(bob, "r")
    await events_of(bob)
    await state.process_heartbeat(PROCESS, now_ms())
    await state.process_heartbeat("web-dead", now_ms() - 5000)
    assert await services.rooms_sweep() == 0  # the room still has bob
    assert await events_of(bob) == [
        {"type": "room.left", "room": "r", "participant": {"name": "alice"}, "reason": "disconnect"}
    ]
    assert await state.session_get(alice.sid) is None and await state.session_get(bob.sid) is not None
    assert (await Participant.objects.aget(login="alice")).leave_reason == Participant.LeaveReason.DISCONNECT
    assert await open_logins("r") == {"bob"}


async def test_finalize_now_tells_everyone_and_repeats_as_a_no_op(finalized_rooms: list[str]) -> None:
    alice, bob = await connected("alice"), await connected("bob")
    await joined(alice, "r")
    await joined(bob, "r")
    live_id = alice.rooms["r"].room_id
    await events_of(alice)
    assert await services.room_finalize_now(name="r", live_id=live_id) is True
    assert {"type": "room.finalized", "room": "r", "reason": "operator"} in await events_of(alice)
    assert {"type": "room.finalized", "room": "r", "reason": "operator"} in await events_of(bob)
    room = await Room.objects.aget(live_id=live_id)
    assert room.status == Room.Status.FINALIZED
    assert await Participant.objects.filter(room=room, left_at__isnull=True).acount() == 0
    assert finalized_rooms == [live_id]
    assert await services.room_finalize_now(name="r", live_id=live_id) is False
    assert finalized_rooms == [live_id]
