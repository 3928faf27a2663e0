"""TURN credentials per session (rooms.turn), and what sessions are given.

The minting is checked against a vector made with openssl (``printf %s
"1796400000:alice" | openssl dgst -sha1 -hmac north-wind-shared-secret
-binary | base64``); that coturn accepts what is minted is proven in
tests/integration/test_turn_relay.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from rooms.access_tokens import VideoGrants, token_mint
from rooms.turn import ice_servers_for, stun_only, turn_credentials_mint
from tests.wsclient import ProtocolClient

SECRET = "north-wind-shared-secret"
STATIC: list[dict[str, Any]] = [
    {"urls": ["stun:stun.example.org:3478", "turn:turn.example.org:3478"], "username": "conf", "credential": "s3cret"},
    {"urls": "stun:stun2.example.org:3478"},
    {"urls": ["stun:stun3.example.org:3478", "turn:nobody.example.org:3478"]},
]
TURN_URLS = ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:443?transport=tcp"]


def test_credentials_follow_the_turn_rest_scheme() -> None:
    minted = turn_credentials_mint(secret=SECRET, identity="alice", now=1796400000 - 3600 + 0.7, ttl_s=3600)
    assert minted.username == "1796400000:alice"
    assert minted.credential == "oyx7ywGX2PoczZvP9q9DGDnqCeU="
    assert minted.expires_at == 1796400000


def test_anonymous_clients_get_stun_urls_without_credentials() -> None:
    assert stun_only(STATIC) == [
        {"urls": ["stun:stun2.example.org:3478"]},
        {"urls": ["stun:stun3.example.org:3478"]},
    ]


def test_every_session_gets_turn_credentials_of_its_own(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ICE_SERVERS = STATIC
    settings.TURN_URLS = TURN_URLS
    settings.TURN_SHARED_SECRET = SECRET
    settings.TURN_CREDENTIAL_TTL_S = 600
    anonymous = ice_servers_for(identity="bob", authenticated=False, now=1796400000)
    assert anonymous.expires_at == 1796400600
    assert anonymous.servers == [
        {"urls": ["stun:stun2.example.org:3478"]},
        {"urls": ["stun:stun3.example.org:3478"]},
        {"urls": TURN_URLS, "username": "1796400600:bob", "credential": anonymous.servers[-1]["credential"]},
    ]
    authenticated = ice_servers_for(identity="bob", authenticated=True, now=1796400000)
    assert authenticated.servers[:3] == STATIC
    assert authenticated.servers[3] == anonymous.servers[-1]
    # Without a secret there is nothing to mint.
    settings.TURN_SHARED_SECRET = ""
    assert ice_servers_for(identity="bob", authenticated=True, now=1796400000).expires_at is None


@pytest.mark.django_db(transaction=True)
async def test_a_session_gets_fresh_credentials_before_its_expire(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ICE_SERVERS = STATIC
    settings.TURN_URLS = TURN_URLS
    settings.TURN_SHARED_SECRET = SECRET
    # Refreshed a fifth of the lifetime before expiry: after about 4 s.
    settings.TURN_CREDENTIAL_TTL_S = 5
    client = await ProtocolClient.open()
    reply = await client.request("session.connect", username="alice")
    started = time.time()
    servers = reply["ice_servers"]
    assert [server for server in servers if "credential" in server] == [servers[-1]]
    username = servers[-1]["username"]
    expiry = int(username.split(":")[0])
    assert username == f"{expiry}:alice" and abs(expiry - (started + 5)) <= 1.5
    assert reply["ice_servers_expires"] == expiry * 1000

    fresh = await client.event("session.ice_servers", timeout=8)
    waited = time.time() - started
    assert 2.5 < waited < expiry - started, waited
    assert fresh["expires"] > reply["ice_servers_expires"]
    minted = turn_credentials_mint(secret=SECRET, identity="alice", now=fresh["expires"] / 1000 - 5, ttl_s=5)
    assert fresh == {
        "type": "session.ice_servers", "expires": minted.expires_at * 1000,
        "ice_servers": [*servers[:-1], {"urls": TURN_URLS, "username": minted.username,
                                         "credential": minted.credential}],
    }
    # And again before those expire.
    again = await client.event("session.ice_servers", timeout=8)
    assert again["expires"] > fresh["expires"]
    await client.close()


@pytest.mark.django_db(transaction=True)
async def test_a_session_with_a_token_gets_the_static_credentials(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ICE_SERVERS = STATIC
    settings.API_KEYS = {"main": "a-long-random-secret-of-more-than-32-characters"}
    token = token_mint(identity="carol", grants=VideoGrants(room="weekly", room_join=True), ttl_s=600)
    client = await ProtocolClient.open()
    reply = await client.request("session.connect", token=token)
    assert reply["ice_servers"] == STATIC
    assert "ice_servers_expires" not in reply
    anonymous = await ProtocolClient.open()
    reply = await anonymous.request("session.connect", username="dave")
    assert reply["ice_servers"] == stun_only(STATIC)
    await anonymous.assert_no_event("session.ice_servers", within=0.5)
    await client.close()
    await anonymous.close()
