"""The server API (/api/): bearer tokens, refusals, token minting, and the
moderation endpoints against real sessions in the same process."""

from __future__ import annotations

import json
import time
from typing import Any
from unittest.mock import ANY

import jwt
import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient

from audit.models import AuditEntry
from rooms.access_tokens import VideoGrants, grants_from_names, token_mint, token_verify
from rooms.media.peer import use_host_address
from rooms.models import Participant, Room
from tests.media_clients import publish
from tests.wsclient import ProtocolClient

pytestmark = pytest.mark.django_db(transaction=True)

KEYS = {"main": "main-secret-0123456789-abcdefghijklmnop", "next": "next-secret-0123456789-abcdefghijklmnop"}


@pytest.fixture(autouse=True)
def api_keys(settings):  # type: ignore[no-untyped-def]
    settings.API_KEYS = dict(KEYS)


def admin_token(room: str = "", *, api_key: str = "main", identity: str = "backend") -> str:
    return token_mint(identity=identity, grants=VideoGrants(room=room, room_admin=True), api_key=api_key)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post(path: str, body: Any, token: str | None, client: AsyncClient | None = None) -> Any:
    headers = bearer(token) if token is not None else {}
    return await (client or AsyncClient()).post(
        path, data=json.dumps(body) if not isinstance(body, bytes) else body,
        content_type="application/json", headers=headers,
    )


def answer(response: Any) -> dict[str, Any]:
    assert response["Content-Type"] == "application/json", response.content
    body: dict[str, Any] = json.loads(response.content)
    return body


MINT = {"identity": "alice", "room": "weekly", "grants": ["publish", "subscribe", "chat"]}


# --- Refusals -------------------------------------------------------------------


def _signed(claims: dict[str, Any], secret: str = KEYS["main"]) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": "main", "sub": "backend", "nbf": now, "exp": now + 600, "video": {"room": "", "roomAdmin": True}}
    claims.update(changes)
    return claims


REFUSED_TOKENS = {
    "garbage": ("not-a-jwt", 401, "token_invalid", "not a JWT"),
    "wrong signature": (_signed(_claims(), "some other secret of enough length!"), 401, "token_invalid",
                        "signature does not verify"),
    "unknown key": (_signed(_claims(iss="gone")), 401, "token_invalid", "API key (iss) is not known"),
    "expired": (_signed(_claims(nbf=int(time.time()) - 3600, exp=int(time.time()) - 60)), 401, "token_expired",
                "expired"),
    "not yet valid": (_signed(_claims(nbf=int(time.time()) + 600)), 401, "token_not_yet_valid", "not valid yet"),
    "another room": (_signed(_claims(video={"room": "other", "roomAdmin": True})), 403, "forbidden",
                     "needs the roomAdmin grant for room 'weekly'"),
    "without roomAdmin": (_signed(_claims(video={"room": "weekly", "roomJoin": True, "roomRecord": True})), 403,
                          "forbidden", "needs the roomAdmin grant for room 'weekly'"),
    "roomAdmin false": (_signed(_claims(video={"room": "", "roomAdmin": False})), 403, "forbidden",
                        "needs the roomAdmin grant"),
}


@pytest.mark.parametrize("case", REFUSED_TOKENS)
async def test_a_refused_token_gets_its_status_code_and_a_sentence(case: str) -> None:
    token, status, code, words = REFUSED_TOKENS[case]
    response = await post("/api/tokens", MINT, token)
    assert response.status_code == status
    body = answer(response)
    assert body["error"] == code
    assert words in body["message"]
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'
    assert not await AuditEntry.objects.aexists()


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic YWxpY2U6c2VjcmV0", "Token abc"])
async def test_without_a_bearer_token_the_answer_is_401_token_required(header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await AsyncClient().post("/api/tokens", data=MINT, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert answer(response) == {
        "error": "token_required",
        "message": "send Authorization: Bearer <access token signed by an API key>",
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


async def test_the_api_takes_no_cookie_a_logged_in_staff_user_is_still_401() -> None:
    await User.objects.acreate_superuser("operator", "op@example.com", "pw-0123456789")
    client = AsyncClient()
    assert await client.alogin(username="operator", password="pw-0123456789")
    response = await post("/api/tokens", MINT, None, client)
    assert response.status_code == 401 and answer(response)["error"] == "token_required"


async def test_bearer_requests_need_no_csrf_token() -> None:
    client = AsyncClient(enforce_csrf_checks=True)
    response = await post("/api/tokens", MINT, admin_token(), client)
    assert response.status_code == 201, response.content


async def test_a_method_the_endpoint_does_not_answer_is_405_with_allow() -> None:
    response = await AsyncClient().get("/api/tokens", headers=bearer(admin_token()))
    assert response.status_code == 405
    assert answer(response) == {"error": "method_not_allowed", "message": "/api/tokens answers POST"}
    assert response["Allow"] == "POST"


# --- Minting tokens -------------------------------------------------------------


async def test_a_minted_token_verifies_carries_what_was_asked_and_is_audited() -> None:
    body = {**MINT, "ttl_s": 900, "name": "Alice Ünal", "metadata": '{"seat": 4}', "sources": ["camera"]}
    before = int(time.time())
    response = await post("/api/tokens", body, admin_token(identity="backend"))
    assert response.status_code == 201
    minted = answer(response)
    claims = token_verify(minted["token"])
    assert claims.identity == "alice" and claims.api_key == "main"
    assert claims.name == "Alice Ünal" and claims.metadata == '{"seat": 4}'
    assert claims.grants == grants_from_names(["publish", "subscribe", "chat"], room="weekly", sources=["camera"])
    assert before + 900 <= claims.expires_at <= int(time.time()) + 900
    assert minted == {
        "token": minted["token"], "identity": "alice", "room": "weekly",
        "grants": claims.grants.claims(), "expires": claims.expires_at * 1000,
    }

    entry = await AuditEntry.objects.aget()
    assert (entry.actor, entry.action, entry.room, entry.target, entry.address) == (
        "key:main", "token.mint", "weekly", "alice", "127.0.0.1"
    )
    assert entry.detail == {
        "caller": "backend", "grants": ["chat", "publish", "subscribe"], "sources": ["camera"], "ttl_s": 900,
        "token_id": claims.token_id,
    }


async def test_a_minted_token_is_signed_with_the_key_of_the_callers_token() -> None:
    response = await post("/api/tokens", MINT, admin_token(api_key="next"))
    assert token_verify(answer(response)["token"]).api_key == "next"
    assert (await AuditEntry.objects.aget()).actor == "key:next"


async def test_an_admin_of_one_room_mints_for_that_room_only() -> None:
    token = admin_token("weekly")
    assert (await post("/api/tokens", MINT, token)).status_code == 201
    refused = await post("/api/tokens", {**MINT, "room": "other"}, token)
    assert refused.status_code == 403
    every_room = await post("/api/tokens", {**MINT, "room": "", "grants": ["admin"]}, token)
    assert every_room.status_code == 403
    assert answer(every_room)["message"] == "needs the roomAdmin grant for room '' (or for every room, room \"\")"
    assert await AuditEntry.objects.acount() == 1


async def test_an_admin_of_every_room_may_mint_an_admin_of_every_room() -> None:
    response = await post("/api/tokens", {"identity": "ops", "room": "", "grants": ["admin"]}, admin_token())
    assert response.status_code == 201
    grants = token_verify(answer(response)["token"]).grants
    assert grants.room == "" and grants.room_admin


async def test_grants_default_to_publish_subscribe_and_chat_as_room_token_does() -> None:
    response = await post("/api/tokens", {"identity": "bob", "room": "weekly"}, admin_token())
    grants = token_verify(answer(response)["token"]).grants
    assert grants == grants_from_names(["publish", "subscribe", "chat"], room="weekly")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "body: Invalid JSON"),
        (b"[]", "body: Input should be an object"),
        ({"room": "weekly"}, "identity: Field required"),
        ({**MINT, "identity": "bad<name>"}, "'bad<name>' is not a login"),
        ({**MINT, "identity": 7}, "identity: Input should be a valid string"),
        ({**MINT, "room": ".hidden"}, "'.hidden' is not a room name"),
        ({**MINT, "room": "a/b"}, "'a/b' is not a room name"),
        ({**MINT, "room": "-flag"}, "'-flag' is not a room name: 1-128 of A-Z a-z 0-9 - _ . not starting with"),
        ({**MINT, "grants": ["publish", "fly"]}, "unknown grant fly"),
        ({**MINT, "sources": ["hologram"]}, "unknown source hologram"),
        ({**MINT, "ttl_s": 0}, "ttl_s: Input should be greater than or equal to 1"),
        ({**MINT, "ttl_s": "6h"}, "ttl_s: Input should be a valid integer"),
        ({**MINT, "admin": True}, "admin: Extra inputs are not permitted"),
    ],
)
async def test_a_bad_body_is_400_naming_the_problem(body: Any, words: str) -> None:
    response = await post("/api/tokens", body, admin_token())
    assert response.status_code == 400
    answered = answer(response)
    assert answered["error"] == "bad_request"
    assert words in answered["message"], answered
    assert not await AuditEntry.objects.aexists()


async def test_a_token_minted_by_livekit_api_authenticates() -> None:
    from livekit import api

    token = (
        api.AccessToken("main", KEYS["main"])
        .with_identity("livekit-backend")
        .with_grants(api.VideoGrants(room_admin=True, room="weekly"))
        .to_jwt()
    )
    response = await post("/api/tokens", MINT, token)
    assert response.status_code == 201, response.content
    entry = await AuditEntry.objects.aget()
    assert entry.actor == "key:main" and entry.detail["caller"] == "livekit-backend"


# --- Rooms, participants and moderation, against real sessions ---------------------


@pytest.fixture(params=["memory", "redis"])
def live_backend(request):  # type: ignore[no-untyped-def]
    """The moderation cases run on in-memory live state and on real Redis."""
    if request.param == "redis":
        request.getfixturevalue("redis_live_state")
    return request.param


async def joined(identity: str, room: str, *, grants: list[str] | None = None, **claims: Any) -> ProtocolClient:
    """A client connected with a token for ``room`` and joined to it."""
    token = token_mint(
        identity=identity, grants=grants_from_names(grants or ["publish", "subscribe", "chat"], room=room), **claims
    )
    client = await ProtocolClient.open()
    await client.connect_session(identity, token=token)
    state = await client.request("room.join", room=room)
    assert state["type"] == "room.state", state
    return client


async def get(path: str, token: str | None) -> Any:
    return await AsyncClient().get(path, headers=bearer(token) if token is not None else {})


async def test_rooms_lists_live_rooms_with_their_counts(live_backend: str) -> None:
    alice = await joined("alice", "weekly")
    bob = await joined("bob", "weekly")
    carol = await joined("carol", "standup")
    ghost = await joined("ghost", "standup", grants=["hidden", "subscribe"])
    response = await get("/api/rooms", admin_token())
    assert response.status_code == 200
    rows = {row.name: row async for row in Room.objects.all()}
    assert answer(response) == {
        "rooms": [
            {
                "name": name, "live_id": rows[name].live_id, "status": "ACTIVE", "participants": count,
                "record": False, "locked": False, "created": int(rows[name].created_at.timestamp() * 1000),
            }
            for name, count in (("standup", 1), ("weekly", 2))
        ]
    }
    for client in (alice, bob, carol, ghost):
        await client.close()


async def test_listing_rooms_needs_room_admin_for_every_room() -> None:
    response = await get("/api/rooms", admin_token("weekly"))
    assert response.status_code == 403
    assert answer(response) == {"error": "forbidden", "message": 'needs the roomAdmin grant for every room (room "")'}
    assert (await get("/api/rooms", None)).status_code == 401


async def test_participants_with_display_name_metadata_join_time_and_streams(live_backend: str) -> None:
    alice = await joined("alice", "weekly", name="Alice Ünal", metadata='{"seat": 4}')
    bob = await joined("bob", "weekly")
    ghost = await joined("ghost", "weekly", grants=["hidden", "subscribe"])
    response = await get("/api/rooms/weekly/participants", admin_token("weekly"))
    assert response.status_code == 200
    assert '"display_name": "Alice Ünal"'.encode() in response.content  # UTF-8 as itself, no \u escapes
    joins = {row.login: row.joined_at async for row in Participant.objects.filter(left_at__isnull=True)}
    assert answer(response) == {
        "room": "weekly",
        "participants": [
            {"identity": "alice", "display_name": "Alice Ünal", "metadata": '{"seat": 4}', "hidden": False,
             "joined": int(joins["alice"].timestamp() * 1000), "streams": []},
            {"identity": "bob", "display_name": "", "metadata": "", "hidden": False,
             "joined": int(joins["bob"].timestamp() * 1000), "streams": []},
            {"identity": "ghost", "display_name": "", "metadata": "", "hidden": True,
             "joined": int(joins["ghost"].timestamp() * 1000), "streams": []},
        ],
    }
    for client in (alice, bob, ghost):
        await client.close()


async def test_participants_of_a_room_that_is_not_live_is_404() -> None:
    response = await get("/api/rooms/nowhere/participants", admin_token())
    assert response.status_code == 404
    assert answer(response) == {"error": "not_found", "message": "there is no live room named 'nowhere'"}


ROOM_ENDPOINTS = [
    ("GET", "/api/rooms/weekly/participants", None),
    ("POST", "/api/rooms/weekly/participants/alice/kick", None),
    ("POST", "/api/rooms/weekly/streams/s1/mute", {"audio": True}),
    ("POST", "/api/rooms/weekly/end", None),
    ("POST", "/api/rooms/weekly/lock", {"locked": True}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROOM_ENDPOINTS)
@pytest.mark.parametrize("case", ["another room", "without roomAdmin", "expired", "unknown key"])
async def test_every_room_endpoint_refuses_a_token_that_does_not_administer_the_room(
    method: str, path: str, body: Any, case: str
) -> None:
    alice = await joined("alice", "weekly")
    token, status, code, words = REFUSED_TOKENS[case]
    if method == "GET":
        response = await get(path, token)
    else:
        response = await post(path, body, token)
    assert response.status_code == status
    assert answer(response)["error"] == code and words in answer(response)["message"]
    # Nothing happened: alice is still in the room, and nothing was audited.
    assert await alice.request("room.message", room="weekly", text="still here") == {
        "type": "ok", "re": ANY, "message": ANY
    }
    assert not await AuditEntry.objects.aexists()
    await alice.close()


async def test_kick_removes_the_participant_and_tells_the_room(live_backend: str) -> None:
    alice = await joined("alice", "weekly")
    bob = await joined("bob", "weekly")
    await alice.event("room.joined")
    response = await post("/api/rooms/weekly/participants/bob/kick", None, admin_token("weekly"))
    assert response.status_code == 200
    assert answer(response) == {"room": "weekly", "identity": "bob", "kicked": True}
    kicked = {
        "type": "room.left", "room": "weekly", "participant": {"name": "bob"}, "reason": "kicked", "by": "key:main"
    }
    assert await bob.event("room.left") == kicked
    assert await alice.event("room.left") == kicked
    # Bob's connection is out of the room, and the API no longer lists him.
    refused = await bob.request("room.message", room="weekly", text="am I here?")
    assert refused["type"] == "error" and refused["code"] == "not_in_room"
    listed = answer(await get("/api/rooms/weekly/participants", admin_token()))
    assert [participant["identity"] for participant in listed["participants"]] == ["alice"]

    entry = await AuditEntry.objects.aget()
    assert (entry.actor, entry.action, entry.room, entry.target, entry.address) == (
        "key:main", "room.kick", "weekly", "bob", "127.0.0.1"
    )
    again = await post("/api/rooms/weekly/participants/bob/kick", None, admin_token("weekly"))
    assert again.status_code == 404
    assert answer(again) == {"error": "not_found", "message": "'bob' is not in room 'weekly'"}
    await alice.close()
    await bob.close()


async def test_lock_refuses_joins_until_unlocked(live_backend: str) -> None:
    alice = await joined("alice", "weekly")
    response = await post("/api/rooms/weekly/lock", {"locked": True}, admin_token("weekly"))
    assert response.status_code == 200 and answer(response) == {"room": "weekly", "locked": True}
    locked = await alice.event("room.locked")
    assert locked == {"type": "room.locked", "room": "weekly", "locked": True, "by": "key:main"}
    assert answer(await get("/api/rooms", admin_token()))["rooms"][0]["locked"] is True

    bob = await ProtocolClient.open()
    await bob.connect_session("bob", token=token_mint(identity="bob", grants=grants_from_names([], room="weekly")))
    refused = await bob.request("room.join", room="weekly")
    assert refused["type"] == "room.failed" and refused["code"] == "room_locked"

    response = await post("/api/rooms/weekly/lock", {"locked": False}, admin_token("weekly"))
    assert answer(response) == {"room": "weekly", "locked": False}
    assert (await alice.event("room.locked"))["locked"] is False
    assert (await bob.request("room.join", room="weekly"))["type"] == "room.state"
    assert [entry.action async for entry in AuditEntry.objects.order_by("pk")] == ["room.lock", "room.unlock"]
    await alice.close()
    await bob.close()


@pytest.mark.parametrize(
    ("body", "words"),
    [({}, "locked: Field required"), ({"locked": "yes"}, "locked: Input should be a valid boolean"),
     (b"nope", "Invalid JSON")],
)
async def test_lock_needs_a_boolean(body: Any, words: str) -> None:
    alice = await joined("alice", "weekly")
    response = await post("/api/rooms/weekly/lock", body, admin_token())
    assert response.status_code == 400 and words in answer(response)["message"]
    await alice.close()


async def test_lock_and_end_of_a_room_that_is_not_live_are_404() -> None:
    for path, body in (("/api/rooms/nowhere/lock", {"locked": True}), ("/api/rooms/nowhere/end", None)):
        response = await post(path, body, admin_token())
        assert response.status_code == 404
        assert answer(response) == {"error": "not_found", "message": "there is no live room named 'nowhere'"}


async def test_end_finalizes_the_room_for_everyone(live_backend: str) -> None:
    alice = await joined("alice", "weekly")
    bob = await joined("bob", "weekly")
    response = await post("/api/rooms/weekly/end", None, admin_token())
    assert response.status_code == 200 and answer(response) == {"room": "weekly", "ended": True}
    finalized = {"type": "room.finalized", "room": "weekly", "reason": "ended", "by": "key:main"}
    assert await alice.event("room.finalized") == finalized
    assert await bob.event("room.finalized") == finalized
    room = await Room.objects.aget(name="weekly")
    assert room.status == Room.Status.FINALIZED
    assert answer(await get("/api/rooms", admin_token())) == {"rooms": []}
    assert (await get("/api/rooms/weekly/participants", admin_token())).status_code == 404
    entry = await AuditEntry.objects.aget()
    assert (entry.actor, entry.action, entry.room) == ("key:main", "room.end", "weekly")
    assert (await post("/api/rooms/weekly/end", None, admin_token())).status_code == 404
    await alice.close()
    await bob.close()


@pytest.fixture
def media(settings):  # type: ignore[no-untyped-def]
    settings.MEDIA_HOST_IP = "127.0.0.1"
    use_host_address("127.0.0.1")


async def test_mute_stops_a_stream_for_everyone_and_answers_its_state(live_backend: str, media: None) -> None:
    alice = await joined("alice", "weekly")
    bob = await joined("bob", "weekly")
    camera = await publish(alice, "weekly")
    stream = camera.stream
    await bob.event("room.published")
    path = f"/api/rooms/weekly/streams/{stream['id']}/mute"

    response = await post(path, {"audio": True}, admin_token("weekly"))
    assert response.status_code == 200
    muted = {**stream, "muted": {"audio": True, "video": False}}
    assert answer(response) == {"room": "weekly", "stream": muted}
    event = {"type": "room.muted", "room": "weekly", "stream": muted, "by": "key:main"}
    assert await bob.event("room.muted") == event
    assert await alice.event("room.muted") == event
    listed = answer(await get("/api/rooms/weekly/participants", admin_token()))
    assert listed["participants"][0]["streams"] == [muted]

    response = await post(path, {"audio": False, "video": True}, admin_token("weekly"))
    assert answer(response)["stream"]["muted"] == {"audio": False, "video": True}
    entries = [(entry.action, entry.target, entry.detail) async for entry in AuditEntry.objects.order_by("pk")]
    assert entries == [
        ("stream.mute", f"alice/{stream['id']}", {"audio": True, "video": None}),
        ("stream.mute", f"alice/{stream['id']}", {"audio": False, "video": True}),
    ]

    # A stream of another room is not this room's, whoever asks.
    carol = await joined("carol", "standup")
    other = await publish(carol, "standup")
    response = await post(f"/api/rooms/weekly/streams/{other.stream['id']}/mute", {"audio": True}, admin_token())
    assert response.status_code == 404
    assert answer(response)["message"] == f"there is no stream {other.stream['id']!r} in room 'weekly'"
    empty = await post(path, {}, admin_token())
    assert empty.status_code == 400 and "say what to mute" in answer(empty)["message"]
    for client in (alice, bob, carol):
        await client.close()
    await camera.close()
    await other.close()

