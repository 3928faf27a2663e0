"""Who may do what, over the consumer in one process (memory and Redis
state): sessions with access tokens, every grant's refusal, replaced
identities, expiry and refresh, moderation."""

from __future__ import annotations

import asyncio
import time
import unicodedata
from typing import Any

import pytest

from audit.models import AuditEntry
from rooms.access_tokens import VideoGrants, token_mint
from tests.wsclient import ProtocolClient

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "a-long-random-secret-of-more-than-32-characters"
# Enough of an offer for the grant checks, which come before any media node.
CAMERA_SDP = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


@pytest.fixture(autouse=True)
def token_mode(settings) -> None:  # type: ignore[no-untyped-def]
    settings.API_KEYS = {"main": SECRET}
    settings.ROOM_AUTH = "token"


@pytest.fixture(autouse=True, params=["memory", "redis"])
def live_backend(request):  # type: ignore[no-untyped-def]
    if request.param == "redis":
        request.getfixturevalue("redis_live_state")
    return request.param


def token(identity: str, room: str = "weekly", ttl_s: int = 600, **grants: Any) -> str:
    fields: dict[str, Any] = {"room": room, "room_join": True, **grants}
    name = fields.pop("name", "")
    metadata = fields.pop("metadata", "")
    return token_mint(identity=identity, grants=VideoGrants(**fields), ttl_s=ttl_s, name=name, metadata=metadata)


async def connected(identity: str, **grants: Any) -> ProtocolClient:
    client = await ProtocolClient.open()
    reply = await client.request("session.connect", token=token(identity, **grants))
    assert reply["status"] == "ESTABLISHED", reply
    return client


async def joined(identity: str, room: str = "weekly", **grants: Any) -> ProtocolClient:
    client = await connected(identity, room=room, **grants)
    state = await client.request("room.join", room=room)
    assert state["type"] == "room.state", state
    return client


async def test_token_mode_needs_a_valid_token_and_says_what_is_wrong() -> None:
    client = await ProtocolClient.open()
    missing = await client.request("session.connect", username="alice")
    assert missing["status"] == "FAILED" and missing["reason"] == "token_required"
    forged = token("alice")[:-4] + "AAAA"
    bad = await client.request("session.connect", token=forged)
    assert bad["status"] == "FAILED" and bad["reason"] == "token_invalid" and "signature" in bad["message"]
    expired = await client.request("session.connect", token=token("alice", ttl_s=-60))
    assert expired["reason"] == "token_expired"
    # The socket stays usable; the token's identity wins over any username.
    good = await client.request("session.connect", username="mallory", token=token("alice", room_admin=True))
    assert good["status"] == "ESTABLISHED" and good["identity"] == "alice"
    assert good["grants"]["roomAdmin"] is True and good["grants"]["room"] == "weekly"
    assert abs(good["expires"] - (time.time() + 600) * 1000) < 5000
    await client.close()


async def test_each_missing_grant_is_refused_by_name() -> None:
    watcher = await joined("watcher", can_publish=False, can_publish_data=False, room_record=False)
    wrong_room = await watcher.request("room.join", room="elsewhere")
    assert wrong_room["type"] == "room.failed" and wrong_room["code"] == "forbidden"
    assert "'weekly', not 'elsewhere'" in wrong_room["message"]
    record = await watcher.request("room.join", room="weekly", record=True)
    assert record["code"] == "forbidden" and "roomRecord" in record["message"]
    chat = await watcher.request("room.message", room="weekly", text="hello")
    assert chat["code"] == "forbidden" and "canPublishData" in chat["message"]
    publish = await watcher.request("stream.publish", room="weekly", kind="camera", sdp=CAMERA_SDP)
    assert publish["code"] == "forbidden" and "canPublish grant" in publish["message"]
    for request, fields in [
        ("room.kick", {"room": "weekly", "participant": "x"}),
        ("room.lock", {"room": "weekly", "locked": True}),
        ("room.end", {"room": "weekly"}),
    ]:
        refused = await watcher.request(request, **fields)
        assert refused["code"] == "forbidden" and "roomAdmin" in refused["message"], refused

    listener = await joined("listener", can_subscribe=False)
    play = await listener.request("stream.play", stream="any", sdp="v=0")
    assert play["code"] == "forbidden" and "canSubscribe" in play["message"]

    camera_only = await joined("camera-only", can_publish_sources=("camera",))
    sources = await camera_only.request("stream.publish", room="weekly", kind="camera", sdp=CAMERA_SDP)
    assert sources["code"] == "forbidden" and "microphone" in sources["message"]
    screen = await camera_only.request("stream.publish", room="weekly", kind="screen", sdp=CAMERA_SDP)
    assert "screen_share, screen_share_audio" in screen["message"]

    no_join = await connected("nobody", room_join=False)
    refused = await no_join.request("room.join", room="weekly")
    assert refused["code"] == "forbidden" and "roomJoin" in refused["message"]
    for client in (watcher, listener, camera_only, no_join):
        await client.close()


async def test_records_link_only_with_record_or_admin_grant() -> None:
    plain = await connected("plain")
    assert "records_url" not in await plain.request("room.join", room="weekly")
    recorder = await connected("recorder", room_record=True)
    assert (await recorder.request("room.join", room="weekly"))["records_url"]
    admin = await connected("admin", room_admin=True)
    assert (await admin.request("room.join", room="weekly"))["records_url"]
    for client in (plain, recorder, admin):
        await client.close()


async def test_a_second_connection_of_an_identity_replaces_the_first() -> None:
    bob = await joined("bob")
    first = await joined("alice")
    await bob.event("room.joined")
    second = await joined("alice")
    ended = await first.event("session.status")
    assert ended == {"type": "session.status", "status": "DISCONNECTED", "reason": "replaced"}
    left = await bob.event("room.left")
    assert left["participant"] == {"name": "alice"} and left["reason"] == "disconnect"
    assert (await bob.event("room.joined"))["participant"]["name"] == "alice"
    # The newer connection is the one in the room.
    await second.request("room.message", room="weekly", text="still here")
    assert (await bob.event("room.message"))["message"]["text"] == "still here"
    await bob.close()
    await second.close()


async def test_a_kicked_participant_is_out_and_may_return_unless_the_room_is_locked() -> None:
    moderator = await joined("mod", room_admin=True)
    guest = await joined("guest")
    other = await joined("other")
    await moderator.event("room.joined")
    kicked = await moderator.request("room.kick", room="weekly", participant="guest")
    assert kicked == {"type": "ok", "re": kicked["re"]}
    told = await guest.event("room.left")
    assert told == {
        "type": "room.left", "room": "weekly", "participant": {"name": "guest"}, "reason": "kicked", "by": "mod"
    }
    assert (await other.event("room.left")) == told
    out = await guest.request("room.message", room="weekly", text="let me back")
    assert out["code"] == "not_in_room"
    from rooms.models import Participant

    row = await Participant.objects.aget(login="guest", room__name="weekly")
    assert row.leave_reason == Participant.LeaveReason.KICKED and row.left_at is not None
    assert (await moderator.request("room.kick", room="weekly", participant="guest"))["code"] == "unknown_participant"

    back = await guest.request("room.join", room="weekly")
    assert back["type"] == "room.state"
    assert (await moderator.request("room.lock", room="weekly", locked=True))["type"] == "ok"
    locked = await guest.event("room.locked")
    assert locked == {"type": "room.locked", "room": "weekly", "locked": True, "by": "mod"}
    await moderator.request("room.kick", room="weekly", participant="guest")
    refused = await guest.request("room.join", room="weekly")
    assert refused["type"] == "room.failed" and refused["code"] == "room_locked"
    # A member's repeated join still answers, and says the room is locked.
    assert (await other.request("room.join", room="weekly"))["locked"] is True
    await moderator.request("room.lock", room="weekly", locked=False)
    assert (await guest.request("room.join", room="weekly"))["type"] == "room.state"

    actions = [
        (entry.actor, entry.action, entry.target)
        async for entry in AuditEntry.objects.filter(room="weekly").order_by("at", "pk")
    ]
    assert actions == [
        ("mod", "room.kick", "guest"), ("mod", "room.lock", ""), ("mod", "room.kick", "guest"),
        ("mod", "room.unlock", ""),
    ]
    for client in (moderator, guest, other):
        await client.close()


async def test_a_moderator_ends_the_room_for_everyone() -> None:
    moderator = await joined("mod", room_admin=True)
    guest = await joined("guest")
    assert (await moderator.request("room.end", room="weekly"))["type"] == "ok"
    for client in (guest, moderator):
        ended = await client.event("room.finalized")
        assert ended == {"type": "room.finalized", "room": "weekly", "reason": "ended", "by": "mod"}
    assert (await guest.request("room.message", room="weekly", text="hello?"))["code"] == "not_in_room"
    assert (await moderator.request("room.end", room="weekly"))["code"] == "unknown_room"
    # The name starts a new room, unlocked and empty.
    fresh = await guest.request("room.join", room="weekly")
    assert fresh["participants"] == [] and fresh["locked"] is False
    await moderator.close()
    await guest.close()


async def test_an_admin_of_every_room_moderates_any_room() -> None:
    guest = await joined("guest", room="standup")
    operator = await connected("operator", room="", room_admin=True, room_join=False)
    assert (await operator.request("room.kick", room="standup", participant="guest"))["type"] == "ok"
    assert (await guest.event("room.left"))["by"] == "operator"
    await operator.close()
    await guest.close()


async def test_a_session_ends_when_its_token_expires_unless_refreshed() -> None:
    # Expired 7 s ago: still accepted within the 10 s of skew, so it ends in about 3 s.
    bob = await joined("bob")
    alice = await ProtocolClient.open()
    reply = await alice.request("session.connect", token=token("alice", ttl_s=-7))
    assert reply["status"] == "ESTABLISHED"
    await alice.request("room.join", room="weekly")
    ended = await alice.event("session.status", timeout=8)
    assert ended == {"type": "session.status", "status": "DISCONNECTED", "reason": "token_expired"}
    left = await bob.event("room.left")
    assert left["participant"] == {"name": "alice"} and left["reason"] == "disconnect"

    carol = await ProtocolClient.open()
    await carol.request("session.connect", token=token("carol", ttl_s=-7))
    await carol.request("room.join", room="weekly")
    other = await carol.request("session.refresh", token=token("mallory"))
    assert other["code"] == "forbidden"
    stale = await carol.request("session.refresh", token=token("carol", ttl_s=-60))
    assert stale["code"] == "token_expired"
    fresh = await carol.request("session.refresh", token=token("carol", ttl_s=600))
    assert fresh["type"] == "ok"
    await carol.assert_no_event("session.status", within=5)
    await carol.request("room.message", room="weekly", text="still here")
    assert (await bob.event("room.message"))["message"]["text"] == "still here"
    await carol.close()
    await bob.close()


async def test_display_names_and_metadata_are_shown_and_hidden_participants_are_not() -> None:
    alice = await joined("alice", name="Alice Liddell", metadata='{"role": "host"}')
    bob = await connected("bob")
    state = await bob.request("room.join", room="weekly")
    assert state["participants"] == [
        {"name": "alice", "display_name": "Alice Liddell", "metadata": '{"role": "host"}', "streams": []}
    ]
    joined_event = await alice.event("room.joined")
    assert joined_event["participant"] == {"name": "bob", "streams": []}

    observer = await joined("observer", hidden=True, room_admin=True)
    await alice.assert_no_event("room.joined")
    carol = await connected("carol")
    listed = await carol.request("room.join", room="weekly")
    assert {participant["name"] for participant in listed["participants"]} == {"alice", "bob"}
    refused = await observer.request("stream.publish", room="weekly", kind="camera", sdp=CAMERA_SDP)
    assert refused["code"] == "forbidden" and "hidden" in refused["message"]
    await observer.request("room.leave", room="weekly")
    await alice.event("room.joined")  # carol
    await alice.assert_no_event("room.left")
    for client in (alice, bob, carol, observer):
        await client.close()


async def test_open_mode_admits_anyone_but_moderation_needs_a_token(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_AUTH = "open"
    anonymous = await ProtocolClient.connected("anon")
    assert (await anonymous.request("room.join", room="weekly", record=True))["record"] is True
    refused = await anonymous.request("room.kick", room="weekly", participant="anon")
    assert refused["code"] == "forbidden"
    # A token, when given, counts in open mode too.
    limited = await connected("limited", can_publish_data=False)
    await limited.request("room.join", room="weekly")
    assert (await limited.request("room.message", room="weekly", text="hi"))["code"] == "forbidden"
    # Logins are compared after NFC: "é" as one code point or as e + accent is one login.
    composed = await ProtocolClient.connected(unicodedata.normalize("NFC", "Zoé"))
    decomposed = await ProtocolClient.connected(unicodedata.normalize("NFD", "Zoé"))
    await composed.request("room.join", room="weekly")
    taken = await decomposed.request("room.join", room="weekly")
    assert taken["code"] == "login_taken"
    for client in (anonymous, limited, composed, decomposed):
        await client.close()


async def test_room_names_may_not_start_with_a_dash(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_AUTH = "open"
    client = await ProtocolClient.connected("alice")
    refused = await client.request("room.join", room="-rf")
    assert refused["code"] == "invalid_room"
    await client.close()


async def test_concurrent_joins_of_one_identity_leave_exactly_one_in_the_room() -> None:
    clients = [await connected("alice") for _ in range(3)]
    replies = await asyncio.gather(*(client.request("room.join", room="weekly") for client in clients))
    assert all(reply["type"] == "room.state" for reply in replies)
    watcher = await joined("watcher")
    state = await watcher.request("room.join", room="weekly")
    assert [participant["name"] for participant in state["participants"]] == ["alice"]
    for client in clients:
        await client.close()
    await watcher.close()


async def test_a_ghost_holder_whose_session_is_gone_is_not_replaced_forever() -> None:
    from rooms.live.context import process_context

    # A membership left behind by a session the live state no longer has
    # (its process died and has not been swept yet).
    state = process_context().live_state
    await state.room_join(
        name="weekly", login="alice", sid="ghost-session", new_room_id="ghost-room", record=False,
        max_participants=16, now_ms=0,
    )
    alice = await connected("alice")
    refused = await alice.request("room.join", room="weekly", timeout=5)
    assert refused["type"] == "room.failed" and refused["code"] == "login_taken"
    await alice.close()


async def test_chat_per_identity_counts_the_tokens_subject_across_its_connections(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHAT_IDENTITY_RATE_BURST = 2
    settings.CHAT_IDENTITY_RATE_PER_SECOND = 0.01
    # One subject, three tokens (each for its own room, under its own display name).
    sockets = [await joined("alice", room=f"desk-{n}", name=f"Alice {n}") for n in range(3)]
    replies = [await socket.request("room.message", room=f"desk-{n}", text="hi") for n, socket in enumerate(sockets)]
    assert [reply["type"] for reply in replies] == ["ok", "ok", "error"]
    assert replies[2]["code"] == "rate_limited" and "'alice'" in replies[2]["message"]
    bob = await joined("bob", room="desk-2")
    assert (await bob.request("room.message", room="desk-2", text="hi"))["type"] == "ok"
    for client in [*sockets, bob]:
        await client.close()
