"""Protocol v1 over the consumer, in one process (memory and Redis state)."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from rooms.models import ChatMessage, Participant, Room
from tests.wsclient import ProtocolClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True, params=["memory", "redis", "redis-lists"])
def live_backend(request, settings):  # type: ignore[no-untyped-def]
    """Every case runs in memory, and on real Redis with each channel layer."""
    if request.param.startswith("redis"):
        prefix = request.getfixturevalue("redis_live_state")
        if request.param == "redis-lists":
            from conference_site.settings import redis_channel_layer

            settings.CHANNEL_LAYERS = {"default": redis_channel_layer(settings.REDIS_URL, prefix, "lists")}
    return request.param


async def test_connect_establishes_a_session() -> None:
    client = await ProtocolClient.open()
    reply = await client.request("session.connect", username="  Alice  ")
    assert reply["type"] == "session.status"
    assert reply["status"] == "ESTABLISHED"
    assert reply["protocol"] == 1
    assert reply["ice_servers"] == []
    assert len(reply["session"]) >= 24
    again = await client.request("session.connect", username="Alice")
    assert again["type"] == "error" and again["code"] == "already_connected"
    await client.close()


@pytest.mark.parametrize("username", ["", "   ", "a" * 65, "bad<name>", "tab\tname", "emoji😀"])
async def test_invalid_username_fails_and_socket_stays_usable(username: str) -> None:
    client = await ProtocolClient.open()
    reply = await client.request("session.connect", username=username)
    assert reply == {"type": "session.status", "re": reply["re"], "status": "FAILED", "reason": "invalid_username"}
    assert (await client.request("session.connect", username="Алиса Ünal-Ō.x@y_1"))["status"] == "ESTABLISHED"
    await client.close()


async def test_ping_works_before_connect() -> None:
    client = await ProtocolClient.open()
    assert (await client.request("ping"))["type"] == "pong"
    await client.close()


async def test_room_requests_before_connect_are_not_connected() -> None:
    client = await ProtocolClient.open()
    for type, fields in [
        ("room.join", {"room": "r"}),
        ("room.leave", {"room": "r"}),
        ("room.message", {"room": "r", "text": "hi"}),
    ]:
        reply = await client.request(type, **fields)
        assert reply["type"] == "error" and reply["code"] == "not_connected", reply
    await client.close()


async def test_join_creates_room_and_others_see_join_leave() -> None:
    alice = await ProtocolClient.connected("alice")
    state = await alice.request("room.join", room="room-1")
    assert state["type"] == "room.state"
    assert state["room"] == "room-1"
    assert state["participants"] == []
    assert state["history"] == []
    assert state["record"] is False

    bob = await ProtocolClient.connected("bob")
    state = await bob.request("room.join", room="room-1")
    assert state["participants"] == [{"name": "alice", "streams": []}]
    joined = await alice.event("room.joined")
    assert joined == {"type": "room.joined", "room": "room-1", "participant": {"name": "bob", "streams": []}}
    await bob.assert_no_event("room.joined")

    assert (await bob.request("room.leave", room="room-1"))["type"] == "ok"
    left = await alice.event("room.left")
    assert left == {"type": "room.left", "room": "room-1", "participant": {"name": "bob"}, "reason": "leave"}

    room = await Room.objects.aget(name="room-1")
    assert room.status == Room.Status.ACTIVE
    bob_row = await Participant.objects.aget(room=room, login="bob")
    assert bob_row.left_at is not None and bob_row.leave_reason == "leave"
    await alice.close()
    await bob.close()


async def test_join_twice_answers_state_again_and_tells_nobody() -> None:
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="r")
    await bob.request("room.join", room="r")
    await alice.event("room.joined")
    again = await bob.request("room.join", room="r")
    assert again["type"] == "room.state" and again["participants"] == [{"name": "alice", "streams": []}]
    await alice.assert_no_event("room.joined")
    await alice.close()
    await bob.close()


async def test_login_taken_and_room_full(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_MAX_PARTICIPANTS = 2
    a = await ProtocolClient.connected("a")
    a2 = await ProtocolClient.connected("a")
    b = await ProtocolClient.connected("b")
    c = await ProtocolClient.connected("c")
    await a.request("room.join", room="r")
    taken = await a2.request("room.join", room="r")
    assert taken["type"] == "room.failed" and taken["code"] == "login_taken" and taken["room"] == "r"
    await b.request("room.join", room="r")
    full = await c.request("room.join", room="r")
    assert full["type"] == "room.failed" and full["code"] == "room_full"
    # A failed joiner receives nothing from the room.
    await a.request("room.message", room="r", text="hello")
    await c.assert_no_event("room.message")
    for client in (a, a2, b, c):
        await client.close()


@pytest.mark.parametrize("room", ["", ".hidden", "a b", "x" * 129, "комната", "a/b"])
async def test_invalid_room(room: str) -> None:
    client = await ProtocolClient.connected("alice")
    reply = await client.request("room.join", room=room)
    assert reply["type"] == "room.failed" and reply["code"] == "invalid_room"
    await client.close()


async def test_last_leave_finalizes_before_ok_and_name_can_be_reused() -> None:
    fired: list[int] = []
    from rooms.signals import room_finalized

    def on_finalized(sender, room, **kwargs):  # type: ignore[no-untyped-def]
        fired.append(room.pk)

    room_finalized.connect(on_finalized)
    try:
        alice = await ProtocolClient.connected("alice")
        await alice.request("room.join", room="once")
        assert (await alice.request("room.leave", room="once"))["type"] == "ok"
        first = await Room.objects.aget(name="once")
        assert first.status == Room.Status.FINALIZED and first.finalized_at is not None
        assert fired == [first.pk]
        state = await alice.request("room.join", room="once")
        assert state["type"] == "room.state"
        rooms = [room async for room in Room.objects.filter(name="once").order_by("created_at")]
        assert [room.status for room in rooms] == ["FINALIZED", "ACTIVE"]
        await alice.close()
    finally:
        room_finalized.disconnect(on_finalized)


async def test_leave_then_join_at_once_never_login_taken(settings) -> None:  # type: ignore[no-untyped-def]
    settings.JOINS_BURST = 100  # 60 joins a connection: the join rate is not under test
    alice = await ProtocolClient.connected("alice")
    other = await ProtocolClient.connected("alice")
    keeper = await ProtocolClient.connected("keeper")
    await keeper.request("room.join", room="r")
    for round_number in range(30):
        joiner, leaver = (alice, other) if round_number % 2 == 0 else (other, alice)
        assert (await joiner.request("room.join", room="r"))["type"] == "room.state"
        # Send the next join right after the ok of the leave, from the other socket.
        assert (await joiner.request("room.leave", room="r"))["type"] == "ok"
        state = await leaver.request("room.join", room="r")
        assert state["type"] == "room.state", state
        assert (await leaver.request("room.leave", room="r"))["type"] == "ok"
    for client in (alice, other, keeper):
        await client.close()


async def test_disconnect_leaves_with_reason_disconnect_and_room_goes_idle(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_IDLE_TIMEOUT_MS = 60_000
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="r")
    await bob.request("room.join", room="r")
    await bob.close()
    left = await alice.event("room.left")
    assert left["reason"] == "disconnect" and left["participant"] == {"name": "bob"}
    await alice.close()
    room = await _wait_for_room_status("r", Room.Status.IDLE)
    assert room.idle_since is not None


async def _wait_for_room_status(name: str, status: str, timeout: float = 10) -> Room:
    async with asyncio.timeout(timeout):
        while True:
            room = await Room.objects.filter(name=name).alast()
            if room is not None and room.status == status:
                return room
            await asyncio.sleep(0.05)


async def test_idle_room_finalizes_after_timeout_unless_rejoined(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_IDLE_TIMEOUT_MS = 600
    settings.SWEEP_INTERVAL_MS = 100
    settings.HEARTBEAT_INTERVAL_MS = 100
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="kept")
    await alice.request("room.join", room="dropped")
    await alice.close()
    bob = await ProtocolClient.connected("bob")
    # Rejoining within the timeout keeps the room alive...
    assert (await bob.request("room.join", room="kept"))["type"] == "room.state"
    # ...and the other one is finalized once the timeout passes.
    room = await _wait_for_room_status("dropped", Room.Status.FINALIZED, timeout=5)
    assert room.finalized_at is not None and room.idle_since is not None
    elapsed = (room.finalized_at - room.idle_since).total_seconds()
    # idle_since is written a few ms after the deadline was computed.
    assert 0.5 <= elapsed < 0.6 + 2, elapsed
    kept = await Room.objects.aget(name="kept")
    assert kept.status == Room.Status.ACTIVE
    await bob.close()


async def test_chat_public_private_and_history() -> None:
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    carol = await ProtocolClient.connected("carol")
    for client in (alice, bob, carol):
        await client.request("room.join", room="chat")

    reply = await alice.request("room.message", room="chat", text="hello all")
    assert reply["type"] == "ok" and reply["message"]
    for client in (alice, bob, carol):
        event = await client.event("room.message")
        assert event["room"] == "chat"
        assert event["message"]["id"] == reply["message"]
        assert event["message"]["from"] == "alice"
        assert event["message"]["to"] is None
        assert event["message"]["text"] == "hello all"
        assert isinstance(event["message"]["ts"], int)

    private = await bob.request("room.message", room="chat", text="psst", to=["alice", "nobody"])
    assert private["type"] == "ok"
    for client in (alice, bob):
        event = await client.event("room.message")
        assert event["message"]["text"] == "psst" and event["message"]["to"] == ["alice"]
    await carol.assert_no_event("room.message")

    missing = await bob.request("room.message", room="chat", text="x", to=["nobody"])
    assert missing["type"] == "error" and missing["code"] == "unknown_participant"

    dave = await ProtocolClient.connected("dave")
    state = await dave.request("room.join", room="chat")
    assert [m["text"] for m in state["history"]] == ["hello all"]
    stored = await ChatMessage.objects.filter(room__name="chat").acount()
    assert stored == 2
    for client in (alice, bob, carol, dave):
        await client.close()


async def test_history_keeps_last_50_public_messages(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHAT_RATE_BURST = settings.CHAT_IDENTITY_RATE_BURST = 100
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="h")
    for number in range(55):
        await alice.request("room.message", room="h", text=f"m{number}")
    bob = await ProtocolClient.connected("bob")
    state = await bob.request("room.join", room="h")
    assert [m["text"] for m in state["history"]] == [f"m{n}" for n in range(5, 55)]
    await alice.close()
    await bob.close()


UNICODE_TEXTS = [
    "Привет, мир! Ёжик",
    "你好，世界。日本語のテキスト、한국어",  # noqa: RUF001  (the fullwidth comma is the point)
    "emoji 👩‍👩‍👧‍👦 🏳️‍🌈 𝄞 🀄 😀",
    "مرحبا بالعالم עברית",
    "e\u0301 a\u0308 n\u0303 Z\u0351\u0352\u0353",
    "\u200b zero width \ufeff bom  spaces  \n newline\t tab ",
    "ö" * 4096,
    "😀" * 4096,
]


@pytest.mark.parametrize("text", UNICODE_TEXTS, ids=range(len(UNICODE_TEXTS)))
async def test_unicode_text_round_trip_byte_for_byte(text: str) -> None:
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="u")
    await bob.request("room.join", room="u")
    await alice.request("room.message", room="u", text=text)
    event = await bob.event("room.message")
    assert event["message"]["text"].encode("utf-8") == text.encode("utf-8")
    stored = await ChatMessage.objects.aget(room__name="u")
    assert stored.text == text
    await alice.close()
    await bob.close()


async def test_chat_rate_limited_answers_and_drops_nothing_silently(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHAT_RATE_BURST = 5
    settings.CHAT_RATE_PER_SECOND = 1
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="r")
    replies = [await alice.request("room.message", room="r", text=f"{n}") for n in range(8)]
    accepted = [r for r in replies if r["type"] == "ok"]
    limited = [r for r in replies if r["type"] == "error"]
    assert len(accepted) == 5
    assert len(limited) == 3 and all(r["code"] == "rate_limited" for r in limited)
    texts = [(await alice.event("room.message"))["message"]["text"] for _ in accepted]
    assert texts == ["0", "1", "2", "3", "4"]
    await alice.close()


async def test_not_in_room_errors() -> None:
    alice = await ProtocolClient.connected("alice")
    for type, fields in [
        ("room.leave", {"room": "elsewhere"}),
        ("room.message", {"room": "elsewhere", "text": "hi"}),
        ("stream.publish", {"room": "elsewhere", "kind": "camera", "sdp": "v=0"}),
    ]:
        reply = await alice.request(type, **fields)
        assert reply["type"] == "error" and reply["code"] == "not_in_room", reply
    await alice.close()


MALFORMED = [
    ("not json", "{nope", None),
    ("array", "[1, 2]", None),
    ("string", '"room.join"', None),
    ("number", "42", None),
    ("null", "null", None),
    ("no type", '{"id": "x1"}', "x1"),
    ("type not string", '{"type": 5, "id": "x2"}', "x2"),
    ("unknown type", '{"type": "room.explode", "id": "x3"}', "x3"),
    ("missing field", '{"type": "room.join", "id": "x4"}', "x4"),
    ("room wrong type", '{"type": "room.join", "id": "x5", "room": 7}', "x5"),
    ("record wrong type", '{"type": "room.join", "id": "x6", "room": "r", "record": "yes"}', "x6"),
    ("text empty", '{"type": "room.message", "id": "x7", "room": "r", "text": ""}', "x7"),
    ("text too long", json.dumps({"type": "room.message", "id": "x8", "room": "r", "text": "a" * 4097}), "x8"),
    ("text NUL", '{"type": "room.message", "id": "x9", "room": "r", "text": "a\\u0000b"}', "x9"),
    ("lone surrogate", '{"type": "room.message", "id": "x10", "room": "r", "text": "\\ud800"}', "x10"),
    ("to empty", '{"type": "room.message", "id": "x11", "room": "r", "text": "t", "to": []}', "x11"),
    ("to wrong type", '{"type": "room.message", "id": "x12", "room": "r", "text": "t", "to": "bob"}', "x12"),
    ("username wrong type", '{"type": "session.connect", "id": "x13", "username": null}', "x13"),
    ("kind unknown", '{"type": "stream.publish", "id": "x14", "room": "r", "kind": "mic", "sdp": ""}', "x14"),
    ("deep nesting", "[" * 5000 + "]" * 5000, None),
    ("id too long", json.dumps({"type": "ping", "id": "i" * 129}), None),
    ("id lone surrogate", '{"type": "ping", "id": "\\udc01"}', None),
    ("room lone surrogate", '{"type": "room.join", "id": "x15", "room": "\\ud800"}', "x15"),
    ("key lone surrogate", '{"type": "ping", "id": "x16", "\\ud800": 1}', "x16"),
    ("participant too long",
     json.dumps({"type": "room.kick", "id": "x17", "room": "r", "participant": "p" * 65}), "x17"),
    ("stream too long", json.dumps({"type": "stream.stop", "id": "x18", "stream": "s" * 65}), "x18"),
    ("token too long", json.dumps({"type": "session.refresh", "id": "x19", "token": "t" * 8193}), "x19"),
    ("to name too long", json.dumps({"type": "room.message", "id": "x20", "room": "r", "text": "t", "to": ["b" * 65]}),
     "x20"),
]


async def test_malformed_frames_get_bad_request_and_socket_stays_open() -> None:
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="r")
    for label, frame, request_id in MALFORMED:
        await alice.send_raw(frame)
        reply = await alice.next_frame()
        assert reply["type"] == "error", label
        assert reply["code"] == "bad_request", label
        assert reply["re"] == request_id, label
        assert reply["message"], label
    await alice.communicator.send_to(bytes_data=b"\x00\x01")
    reply = await alice.next_frame()
    assert reply["type"] == "error" and reply["code"] == "bad_request"
    # Nothing was lost: the session and the room membership still work.
    assert (await alice.request("room.message", room="r", text="still here"))["type"] == "ok"
    assert (await alice.event("room.message"))["message"]["text"] == "still here"
    await alice.close()


async def test_oversize_frame_closes_with_1009_and_others_go_on() -> None:
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="r")
    await bob.request("room.join", room="r")
    await alice.send_raw(json.dumps({"type": "room.message", "room": "r", "text": "x" * (64 * 1024)}))
    async with asyncio.timeout(5):
        while (output := await alice.communicator.receive_output(timeout=5))["type"] != "websocket.close":
            pass
    assert output == {"type": "websocket.close", "code": 1009}
    left = await bob.event("room.left")
    assert left["reason"] == "disconnect"
    assert (await bob.request("room.message", room="r", text="fine"))["type"] == "ok"
    await bob.close()


async def test_wrong_origin_is_refused() -> None:
    from channels.testing import WebsocketCommunicator

    from conference_site.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/rooms/", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await communicator.connect(timeout=5)
    assert not connected
    await communicator.disconnect()


async def test_handler_crash_answers_internal_error_and_connection_survives(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rooms import services

    async def broken(**kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="r")
    monkeypatch.setattr(services, "chat_message_send", broken)
    reply = await alice.request("room.message", room="r", text="hi")
    assert reply["type"] == "error" and reply["code"] == "internal_error"
    monkeypatch.undo()
    assert (await alice.request("room.message", room="r", text="hi"))["type"] == "ok"
    await alice.close()


async def test_resume_ends_the_old_session_so_the_login_can_rejoin() -> None:
    old = await ProtocolClient.connected("alice")
    watcher = await ProtocolClient.connected("watcher")
    await old.request("room.join", room="r")
    await watcher.request("room.join", room="r")
    new = await ProtocolClient.open()
    old_session = await _session_id_of(old)
    reply = await new.request("session.connect", username="alice", resume=old_session)
    assert reply["status"] == "ESTABLISHED"
    status = await old.event("session.status")
    assert status["status"] == "DISCONNECTED" and status["reason"] == "resumed"
    left = await watcher.event("room.left")
    assert left["participant"] == {"name": "alice"} and left["reason"] == "disconnect"
    assert (await new.request("room.join", room="r"))["type"] == "room.state"
    for client in (new, watcher):
        await client.close()


async def _session_id_of(client: ProtocolClient) -> str:
    sessions = Participant.objects.filter(login="alice").values_list("session", flat=True)
    rows = await database_sync_to_async(list)(sessions)
    return str(rows[-1])


async def test_null_constants_and_oversize_binary() -> None:
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="r")
    for frame in (
        '{"type": "room.message", "id": "n1", "room": "r", "text": "t", "to": null}',
        '{"type": "ping", "id": null}',
        '{"type": "room.message", "id": "n2", "room": "r", "text": "t", "x": NaN}',
    ):
        await alice.send_raw(frame)
        reply = await alice.next_frame()
        assert reply["type"] == "error" and reply["code"] == "bad_request", frame
    await alice.communicator.send_to(bytes_data=b"x" * (64 * 1024 + 1))
    status = await alice.next_frame()
    assert status == {"type": "session.status", "status": "DISCONNECTED", "reason": "message_too_big"}
    assert await alice.communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 1009}


async def test_a_join_during_chat_sees_each_message_once_in_history_or_as_event(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHAT_RATE_BURST = settings.CHAT_IDENTITY_RATE_BURST = 1000
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="busy")
    sent = [await alice.send("room.message", room="busy", text=f"m{number}") for number in range(120)]
    replies = [await alice.reply(request_id) for request_id in sent[:30]]
    state = await bob.request("room.join", room="busy")  # while the rest are in flight
    replies += [await alice.reply(request_id) for request_id in sent[30:]]
    assert all(reply["type"] == "ok" for reply in replies)
    seen = [message["text"] for message in state["history"]]
    while not seen or seen[-1] != "m119":
        seen.append((await bob.event("room.message"))["message"]["text"])
    first = int(seen[0][1:])
    assert seen == [f"m{number}" for number in range(first, 120)]
    assert 30 <= len(state["history"]) < len(seen), "the join did not land mid-stream"
    await bob.assert_no_event("room.message")
    await alice.close()
    await bob.close()


async def test_a_failing_event_handler_does_not_kill_the_connection(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rooms.consumers import RoomConsumer

    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="r")
    original = RoomConsumer.room_event
    failed = asyncio.Event()

    async def failing_once(self, message):  # type: ignore[no-untyped-def]
        if not failed.is_set():
            failed.set()
            raise RuntimeError("event handler failed")
        await original(self, message)

    monkeypatch.setattr(RoomConsumer, "room_event", failing_once)
    await bob.request("room.join", room="r")  # alice's room.joined event fails
    await asyncio.wait_for(failed.wait(), 5)
    await bob.request("room.message", room="r", text="after the failure")
    assert (await alice.event("room.message"))["message"]["text"] == "after the failure"
    await alice.close()
    await bob.close()


async def test_a_cancelled_consumer_still_drops_its_session() -> None:
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="r")
    await bob.request("room.join", room="r")
    alice.communicator.future.cancel()  # as a server does to an application that outlives its socket
    left = await bob.event("room.left")
    assert left["participant"] == {"name": "alice"} and left["reason"] == "disconnect"
    await bob.close()
