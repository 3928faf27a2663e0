"""ROOM_AUTH=token on two real daphne processes sharing Redis and
PostgreSQL, as a deployment runs it: tokens minted by the application's own
JWT code and by LiveKit's server SDK, moderation and replacement across
processes, and the refusal to start open by accident."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import jwt
import pytest

from tests.processes import ROOT
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

KEY, SECRET = "deploy", "s3cr3t-that-is-long-enough-for-hs256-signing"
TOKEN_ENV = {"ROOM_AUTH": "token", "API_KEYS": f"old:retired-secret-still-valid-while-rotating,{KEY}:{SECRET}"}


def own_jwt(identity: str, **video: object) -> str:
    """A token as an application writes it with nothing but a JWT library."""
    now = int(time.time())
    claims = {"iss": KEY, "sub": identity, "nbf": now, "exp": now + 300, "video": {"room": "weekly", **video}}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def livekit_jwt(identity: str, **grants: object) -> str:
    from livekit import api

    return (
        api.AccessToken(KEY, SECRET)
        .with_identity(identity)
        .with_name(identity.title())
        .with_ttl(timedelta(minutes=5))
        .with_grants(api.VideoGrants(room="weekly", **grants))  # type: ignore[arg-type]
        .to_jwt()
    )


async def connected(url: str, token: str) -> SocketClient:
    client = await SocketClient.open(url)
    reply = await client.request("session.connect", token=token)
    assert reply["status"] == "ESTABLISHED", reply
    return client


@pytest.fixture
def pair(start_server):  # type: ignore[no-untyped-def]
    return start_server("daphne", "web-a", env=TOKEN_ENV), start_server("daphne", "web-b", env=TOKEN_ENV)


async def test_tokens_grants_and_moderation_across_two_processes(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    anonymous = await SocketClient.open(a.ws_url)
    refused = await anonymous.request("session.connect", username="alice")
    assert refused["status"] == "FAILED" and refused["reason"] == "token_required"
    await anonymous.close()

    moderator = await connected(a.ws_url, livekit_jwt("mod", room_join=True, room_admin=True))
    assert (await moderator.request("room.join", room="weekly"))["type"] == "room.state"
    guest = await connected(b.ws_url, own_jwt("guest", roomJoin=True, canPublishData=False))
    state = await guest.request("room.join", room="weekly")
    assert state["participants"] == [{"name": "mod", "display_name": "Mod", "streams": []}]
    assert "records_url" not in state
    chat = await guest.request("room.message", room="weekly", text="hi")
    assert chat["code"] == "forbidden" and "canPublishData" in chat["message"]

    # The guest opens the page again on the other process: the newer one wins.
    again = await connected(a.ws_url, own_jwt("guest", roomJoin=True))
    assert (await again.request("room.join", room="weekly"))["type"] == "room.state"
    assert (await guest.event("session.status"))["reason"] == "replaced"

    assert (await moderator.request("room.lock", room="weekly", locked=True))["type"] == "ok"
    assert (await moderator.request("room.kick", room="weekly", participant="guest"))["type"] == "ok"
    kicked = await again.event("room.left")
    assert kicked["participant"] == {"name": "guest"} and kicked["reason"] == "kicked" and kicked["by"] == "mod"
    locked_out = await again.request("room.join", room="weekly")
    assert locked_out["code"] == "room_locked"
    await moderator.request("room.lock", room="weekly", locked=False)
    assert (await again.request("room.join", room="weekly"))["type"] == "room.state"

    assert (await moderator.request("room.end", room="weekly"))["type"] == "ok"
    assert (await again.event("room.finalized"))["reason"] == "ended"
    for client in (moderator, guest, again):
        await client.close()


def test_a_production_server_will_not_start_open_by_accident(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "VAR_DIR": str(tmp_path), "DEBUG": "false"}
    env.pop("ROOM_AUTH", None)
    started = subprocess.run(
        [sys.executable, "-c", "import conference_site.asgi"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "ROOM_AUTH is not set" in started.stderr
    explicit = subprocess.run(
        [sys.executable, "-c", "import conference_site.asgi"], cwd=ROOT, env={**env, "ROOM_AUTH": "open"},
        capture_output=True, text=True, timeout=60,
    )
    assert explicit.returncode == 0, explicit.stderr
    no_keys = subprocess.run(
        [sys.executable, "-c", "import conference_site.asgi"], cwd=ROOT, env={**env, "ROOM_AUTH": "token"},
        capture_output=True, text=True, timeout=60,
    )
    assert no_keys.returncode != 0 and "needs API_KEYS" in no_keys.stderr
