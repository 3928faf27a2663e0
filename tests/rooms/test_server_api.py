"""The server API (/api/): bearer tokens, refusals, token minting, and the
moderation endpoints against real sessions in the same process."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient

from audit.models import AuditEntry
from rooms.access_tokens import VideoGrants, grants_from_names, token_mint, token_verify

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
