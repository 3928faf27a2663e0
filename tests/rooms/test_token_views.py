"""/api/token and /api/invites as the pages use them: CSRF-protected, with a
session cookie, an invitation or an access token; every refusal in JSON
with a sentence the page shows as it is."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import AsyncClient, Client

from audit.models import AuditEntry
from rooms.access_tokens import grants_from_names, token_mint, token_verify
from rooms.invites import invite_create
from tests.wsclient import ProtocolClient

SECRET = "pages-test-secret-" + "x" * 32

# The views reach the database from the thread pool (rooms.database.db_call):
# rows a test writes must be committed for them to see.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def token_mode(settings):  # type: ignore[no-untyped-def]
    settings.ROOM_AUTH = "token"
    settings.API_KEYS = {"pages": SECRET}
    settings.PAGE_TOKEN_TTL_S = 600
    return settings


def page_client(user: User | None = None) -> Client:
    """A browser that opened a room page: it has the CSRF cookie, and sends it back as the pages do."""
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    assert client.get("/conference/?roomName=weekly").status_code == 200
    return client


def post(client: Client, path: str, body: dict[str, Any], bearer: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"X-CSRFToken": client.cookies["csrftoken"].value}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    response = client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.status_code, response.json()


def refusal(status: int, code: str, message: str) -> tuple[int, dict[str, str]]:
    return status, {"error": code, "message": message}


# --- a logged-in user's token ---------------------------------------------------------


def test_a_logged_in_user_gets_a_token_for_the_room_as_themselves() -> None:
    user = User.objects.create_user("alice", first_name="Alice", last_name="Liddell")
    before = int(time.time())
    status, answer = post(page_client(user), "/api/token", {"room": "weekly"})
    assert status == 200
    assert answer["identity"] == "alice"
    claims = token_verify(answer["token"])
    assert (claims.identity, claims.name, claims.grants.room) == ("alice", "Alice Liddell", "weekly")
    assert before + 600 <= claims.expires_at <= int(time.time()) + 600
    assert answer["expires"] == claims.expires_at * 1000
    assert answer["grants"] == claims.grants.claims()
    assert answer["grants"]["roomJoin"] and answer["grants"]["canPublish"] and answer["grants"]["canPublishData"]
    assert not answer["grants"]["roomAdmin"] and not answer["grants"]["roomRecord"]


@pytest.mark.parametrize("how", ["staff", "permission", "superuser"])
def test_moderators_get_record_and_admin(how: str) -> None:
    user = User.objects.create_user("mod", is_staff=how == "staff", is_superuser=how == "superuser")
    if how == "permission":
        user.user_permissions.add(Permission.objects.get(codename="moderate_room", content_type__app_label="rooms"))
    status, answer = post(page_client(user), "/api/token", {"room": "weekly"})
    assert status == 200
    grants = token_verify(answer["token"]).grants
    assert grants.room_admin and grants.room_record and grants.room == "weekly"


def test_a_user_name_that_cannot_be_a_login_is_told() -> None:
    user = User.objects.create_user("a+b")
    assert post(page_client(user), "/api/token", {"room": "weekly"}) == refusal(
        400,
        "invalid_login",
        "Your user name “a+b” cannot be a login. Logins are 1-64 letters, digits, spaces and “-”, “_”, “.”, “@”.",
    )


# --- refusals that do not depend on who asks -------------------------------------------


def test_nobody_logged_in_and_no_invite_is_refused() -> None:
    assert post(page_client(), "/api/token", {"room": "weekly"}) == refusal(
        401, "not_logged_in", "This room needs an invitation: open the invite link you were sent, or log in."
    )


def test_a_post_without_the_csrf_header_is_refused() -> None:
    user = User.objects.create_user("alice")
    client = page_client(user)
    response = client.post("/api/token", data=json.dumps({"room": "weekly"}), content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.content.decode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"room": ".hidden"}, refusal(400, "invalid_room", "“.hidden” is not a valid room name.")),
        ({"room": "-rf"}, refusal(400, "invalid_room", "“-rf” is not a valid room name.")),
        ({}, refusal(400, "bad_request", "room: Field required")),
        ({"room": "weekly", "admin": True}, refusal(400, "bad_request", "admin: Extra inputs are not permitted")),
        ({"room": 5}, refusal(400, "bad_request", "room: Input should be a valid string")),
    ],
)
def test_a_malformed_request_is_told_what_is_wrong(body: dict[str, Any], expected: tuple[int, Any]) -> None:
    user = User.objects.create_user("alice")
    assert post(page_client(user), "/api/token", body) == expected


def test_only_post_is_answered() -> None:
    response = Client().get("/api/token")
    assert response.status_code == 405
    assert response.json() == {"error": "method_not_allowed", "message": "/api/token answers POST"}


def test_a_server_without_api_keys_says_so(token_mode) -> None:  # type: ignore[no-untyped-def]
    token_mode.ROOM_AUTH = "open"
    token_mode.API_KEYS = {}
    user = User.objects.create_user("alice")
    assert post(page_client(user), "/api/token", {"room": "weekly"}) == refusal(
        503, "tokens_unavailable", "This server has no API_KEYS to sign access tokens with: join with a login."
    )


# --- a guest's token from an invitation --------------------------------------------------


def invitation(room: str = "weekly", **options: Any) -> str:
    value, _ = invite_create(room=room, created_by="user:alice", **options)
    return value


def test_a_guest_exchanges_an_invitation_and_a_login_for_a_token() -> None:
    status, answer = post(
        page_client(), "/api/token", {"room": "weekly", "invite": invitation(), "login": "  Zoe\u0301 "}
    )
    assert status == 200
    # Trimmed and NFC-normalised, as the server compares logins.
    assert answer["identity"] == "Zoé"
    claims = token_verify(answer["token"])
    assert claims.identity == "Zoé"
    assert claims.grants == grants_from_names(["publish", "subscribe", "chat"], room="weekly")


@pytest.mark.parametrize(
    ("make", "body", "expected"),
    [
        (
            lambda: invitation(max_age_s=60, now=time.time() - 61),
            {"room": "weekly", "login": "zoe"},
            refusal(403, "invite_expired", "This invite link has expired. Ask for a new one."),
        ),
        (
            lambda: invitation(room="board"),
            {"room": "weekly", "login": "zoe"},
            refusal(403, "invite_wrong_room", "This invite link is for room “board”, not “weekly”."),
        ),
        (
            lambda: invitation()[:-3],
            {"room": "weekly", "login": "zoe"},
            refusal(400, "invite_invalid", "This invite link is not valid: copy the whole link again."),
        ),
        (lambda: invitation(), {"room": "weekly"}, refusal(400, "login_required", "Enter a login to join.")),
        (
            lambda: invitation(),
            {"room": "weekly", "login": "bad<name>"},
            refusal(400, "invalid_login", "Logins are 1-64 letters, digits, spaces and “-”, “_”, “.”, “@”."),
        ),
    ],
    ids=["expired", "wrong-room", "damaged", "no-login", "bad-login"],
)
def test_an_invitation_that_admits_nobody_is_told(make: Any, body: dict[str, Any], expected: Any) -> None:
    assert post(page_client(), "/api/token", {**body, "invite": make()}) == expected


def test_a_guest_cannot_take_a_registered_users_login() -> None:
    User.objects.create_user("alice")
    for login in ("alice", "ALICE"):
        assert post(page_client(), "/api/token", {"room": "weekly", "invite": invitation(), "login": login}) == refusal(
            409, "login_reserved", f"The login “{login}” belongs to a registered user: log in, or choose another login."
        )


def test_an_invitation_with_max_uses_admits_that_many_logins() -> None:
    invite = invitation(max_uses=2)
    first, second, third = page_client(), page_client(), page_client()
    assert post(first, "/api/token", {"room": "weekly", "invite": invite, "login": "bob"})[0] == 200
    # A reload (or a token refresh) is not another use.
    assert post(first, "/api/token", {"room": "weekly", "invite": invite, "login": "bob"})[0] == 200
    assert post(second, "/api/token", {"room": "weekly", "invite": invite, "login": "carol"})[0] == 200
    assert post(third, "/api/token", {"room": "weekly", "invite": invite, "login": "dave"}) == refusal(
        403, "invite_used_up", "This invite link has been used up. Ask for a new one."
    )
    assert post(first, "/api/token", {"room": "weekly", "invite": invite, "login": "bob"})[0] == 200


# --- the tokens work on the server, and guests cannot take each other's login ------------


async def apost(client: AsyncClient, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        path,
        data=json.dumps(body),
        content_type="application/json",
        headers={"X-CSRFToken": client.cookies["csrftoken"].value},
    )
    return response.status_code, response.json()


async def async_page_client() -> AsyncClient:
    client = AsyncClient(enforce_csrf_checks=True)
    assert (await client.get("/conference/?roomName=weekly")).status_code == 200
    return client


async def test_a_guest_token_joins_its_room_and_only_the_guest_may_take_the_login_back() -> None:
    invite = await _invitation_async()
    guest_browser, other_browser = await async_page_client(), await async_page_client()
    status, answer = await apost(guest_browser, "/api/token", {"room": "weekly", "invite": invite, "login": "bob"})
    assert status == 200

    bob = await ProtocolClient.open()
    established = await bob.request("session.connect", token=answer["token"])
    assert established["status"] == "ESTABLISHED"
    assert (established["identity"], established["grants"]) == ("bob", answer["grants"])
    assert established["expires"] == answer["expires"]
    assert (await bob.request("room.join", room="weekly"))["type"] == "room.state"
    refused = await bob.request("room.join", room="board")
    assert (refused["type"], refused["code"]) == ("room.failed", "forbidden")

    # Another browser with the same link cannot take bob's place in the room...
    assert await apost(other_browser, "/api/token", {"room": "weekly", "invite": invite, "login": "bob"}) == refusal(
        409, "login_taken", "The login “bob” is already in room “weekly”. Choose another login."
    )
    # ...but bob's own browser may (a reload, or a fresh token before expiry).
    status, fresh = await apost(guest_browser, "/api/token", {"room": "weekly", "invite": invite, "login": "bob"})
    assert status == 200
    assert (await bob.request("session.refresh", token=fresh["token"]))["type"] == "ok"
    await bob.close()


async def _invitation_async() -> str:
    from channels.db import database_sync_to_async

    return await database_sync_to_async(invitation)()


# --- invite links ----------------------------------------------------------------------


def test_a_moderator_makes_an_invite_link_that_admits_a_guest() -> None:
    alice = User.objects.create_user("alice", is_staff=True)
    status, made = post(page_client(alice), "/api/invites", {"room": "weekly", "max_uses": 3})
    assert status == 201
    assert (made["room"], made["grants"], made["max_uses"]) == ("weekly", ["publish", "subscribe", "chat"], 3)
    assert made["expires"] > time.time() * 1000
    status, answer = post(page_client(), "/api/token", {"room": "weekly", "invite": made["invite"], "login": "bob"})
    assert status == 200 and answer["identity"] == "bob"
    entry = AuditEntry.objects.get(action="invite.create")
    assert (entry.actor, entry.room, entry.address) == ("user:alice", "weekly", "127.0.0.1")
    assert entry.detail["max_uses"] == 3 and entry.target.startswith("invite:")


def test_a_page_holding_a_room_admin_token_makes_invite_links() -> None:
    moderator = token_mint(identity="mo", grants=grants_from_names(["admin"], room="weekly"))
    status, made = post(
        page_client(), "/api/invites", {"room": "weekly", "grants": ["chat", "subscribe"]},
        bearer=moderator,
    )
    assert status == 201 and made["grants"] == ["subscribe", "chat"]
    assert AuditEntry.objects.get(action="invite.create").actor == "mo"


def test_only_moderators_make_invite_links() -> None:
    bob = User.objects.create_user("bob")
    guest_token = token_mint(identity="g", grants=grants_from_names(["chat"], room="weekly"))
    other_room_admin = token_mint(identity="m", grants=grants_from_names(["admin"], room="board"))
    assert post(page_client(), "/api/invites", {"room": "weekly"}) == refusal(
        401, "not_logged_in", "Log in as a moderator to make invite links."
    )
    only_moderators = refusal(403, "forbidden", "Only a moderator of room “weekly” may make invite links for it.")
    assert post(page_client(bob), "/api/invites", {"room": "weekly"}) == only_moderators
    for token in (guest_token, other_room_admin):
        assert post(
            page_client(), "/api/invites", {"room": "weekly"}, bearer=token
        ) == only_moderators
    status, answer = post(page_client(), "/api/invites", {"room": "weekly"}, bearer="nope")
    assert (status, answer["error"]) == (401, "token_invalid")
    assert AuditEntry.objects.filter(action="invite.create").count() == 0


def test_an_invite_link_cannot_promise_what_it_may_not() -> None:
    alice = User.objects.create_user("alice", is_staff=True)
    client = page_client(alice)
    assert post(client, "/api/invites", {"room": "weekly", "grants": ["hidden"]}) == refusal(
        400, "bad_request", "an invite cannot grant hidden; it may grant publish, subscribe, chat, record, admin"
    )
    assert post(client, "/api/invites", {"room": "weekly", "max_uses": 0}) == refusal(
        400, "bad_request", "max_uses must be 1-10000"
    )
