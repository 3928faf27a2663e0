"""The server API over real HTTP, against two real daphne processes in
ROOM_AUTH=token mode that share Redis and PostgreSQL: the API call reaches
one process, the participant it acts on is connected to the other."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from rooms.access_tokens import VideoGrants, grants_from_names
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

KEY, SECRET = "main", "integration-secret-0123456789-abcdefghij"


def mint(identity: str, grants: VideoGrants) -> str:
    """A token minted the way an application of its own would: LiveKit's SDK."""
    from livekit import api

    video = api.VideoGrants(
        room=grants.room, room_join=grants.room_join, room_admin=grants.room_admin, can_publish=grants.can_publish,
        can_subscribe=grants.can_subscribe, can_publish_data=grants.can_publish_data,
    )
    return api.AccessToken(KEY, SECRET).with_identity(identity).with_grants(video).to_jwt()


def http(method: str, url: str, token: str | None, body: Any = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def call(method: str, url: str, token: str | None, body: Any = None) -> tuple[int, dict[str, Any]]:
    return await asyncio.to_thread(http, method, url, token, body)


async def joined(url: str, identity: str, room: str) -> SocketClient:
    client = await SocketClient.open(url)
    reply = await client.request("session.connect", token=mint(identity, grants_from_names(["chat"], room=room)))
    assert reply["status"] == "ESTABLISHED" and reply["identity"] == identity, reply
    assert (await client.request("room.join", room=room))["type"] == "room.state"
    return client


def audit_rows(database_url: str) -> list[tuple[str, str, str, str, str | None]]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT actor, action, room, target, host(address) FROM audit_auditentry ORDER BY id"
        ).fetchall()
    return [tuple(row) for row in rows]  # type: ignore[misc]


@pytest.fixture
def pair(start_server):  # type: ignore[no-untyped-def]
    env = {"ROOM_AUTH": "token", "API_KEYS": f"{KEY}:{SECRET}"}
    return start_server("daphne", "web-a", env=env), start_server("daphne", "web-b", env=env)


async def test_a_kick_through_the_api_of_one_process_removes_a_participant_of_the_other(
    pair, integration_database: str  # type: ignore[no-untyped-def]
) -> None:
    a, b = pair
    api_token = mint("backend", VideoGrants(room="", room_admin=True))
    alice = await joined(a.ws_url, "alice", "weekly")
    bob = await joined(a.ws_url, "bob", "weekly")
    await alice.event("room.joined")

    status, listed = await call("GET", f"{b.http_url}api/rooms/weekly/participants", api_token)
    assert status == 200
    assert [participant["identity"] for participant in listed["participants"]] == ["alice", "bob"]

    status, answer = await call("POST", f"{b.http_url}api/rooms/weekly/participants/bob/kick", api_token)
    assert (status, answer) == (200, {"room": "weekly", "identity": "bob", "kicked": True})
    kicked = {
        "type": "room.left", "room": "weekly", "participant": {"name": "bob"}, "reason": "kicked", "by": "key:main"
    }
    assert await bob.event("room.left") == kicked
    assert await alice.event("room.left") == kicked
    refused = await bob.request("room.message", room="weekly", text="still here?")
    assert refused["type"] == "error" and refused["code"] == "not_in_room"
    status, listed = await call("GET", f"{a.http_url}api/rooms/weekly/participants", api_token)
    assert [participant["identity"] for participant in listed["participants"]] == ["alice"]

    status, rooms = await call("GET", f"{a.http_url}api/rooms", api_token)
    assert status == 200 and [(room["name"], room["participants"]) for room in rooms["rooms"]] == [("weekly", 1)]
    assert audit_rows(integration_database)[-1] == ("key:main", "room.kick", "weekly", "bob", "127.0.0.1")
    await alice.close()
    await bob.close()


async def test_an_identity_in_any_script_is_named_in_the_path_percent_encoded(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    identity = "Алиса Ünal@home"
    alice = await joined(a.ws_url, identity, "team.sync")
    api_token = mint("backend", VideoGrants(room="team.sync", room_admin=True))
    path = f"api/rooms/team.sync/participants/{quote(identity)}/kick"
    status, answer = await call("POST", b.http_url + path, api_token)
    assert (status, answer) == (200, {"room": "team.sync", "identity": identity, "kicked": True})
    assert (await alice.event("room.left"))["participant"] == {"name": identity}
    await alice.close()


async def test_a_token_minted_through_the_api_joins_a_real_session(
    pair, integration_database: str  # type: ignore[no-untyped-def]
) -> None:
    a, b = pair
    status, refused = await call("POST", f"{a.http_url}api/tokens", None, {"identity": "carol", "room": "weekly"})
    assert status == 401 and refused["error"] == "token_required"
    weekly_admin = mint("backend", VideoGrants(room="weekly", room_admin=True))
    status, refused = await call("POST", f"{a.http_url}api/tokens", weekly_admin, {"identity": "carol", "room": "x"})
    assert status == 403 and refused == {
        "error": "forbidden", "message": "needs the roomAdmin grant for room 'x' (or for every room, room \"\")"
    }

    body = {"identity": "carol", "room": "weekly", "grants": ["chat"], "name": "Carol", "ttl_s": 600}
    status, minted = await call("POST", f"{a.http_url}api/tokens", weekly_admin, body)
    assert status == 201, minted
    carol = await SocketClient.open(b.ws_url)
    established = await carol.request("session.connect", token=minted["token"])
    assert established["status"] == "ESTABLISHED" and established["identity"] == "carol"
    assert established["expires"] == minted["expires"]
    assert (await carol.request("room.join", room="weekly"))["type"] == "room.state"
    refused_room = await carol.request("room.join", room="other")
    assert refused_room["type"] == "room.failed" and refused_room["code"] == "forbidden"
    status, listed = await call("GET", f"{b.http_url}api/rooms/weekly/participants", weekly_admin)
    assert listed["participants"][0]["identity"] == "carol" and listed["participants"][0]["display_name"] == "Carol"
    assert audit_rows(integration_database)[-1] == ("key:main", "token.mint", "weekly", "carol", "127.0.0.1")
    await carol.close()
