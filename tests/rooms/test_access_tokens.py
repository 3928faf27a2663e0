"""Access tokens on their own: what verifies, what is refused and why.

Tokens here are made three ways: by the server's own ``token_mint``, by
hand with PyJWT (as any application's own JWT code would), and by LiveKit's
server SDK (``livekit-api``).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.core.management import CommandError, call_command

from rooms.access_tokens import (
    CLOCK_SKEW_S,
    TokenError,
    VideoGrants,
    grants_from_names,
    token_mint,
    token_verify,
)

SECRET = "a-long-random-secret-of-more-than-32-characters"
OTHER_SECRET = "another-long-random-secret-used-for-rotation-0"


@pytest.fixture(autouse=True)
def keys(settings) -> None:  # type: ignore[no-untyped-def]
    settings.API_KEYS = {"main": SECRET, "next": OTHER_SECRET}


def hand_made(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    now = int(time.time())
    payload = {"iss": "main", "sub": "alice", "nbf": now, "exp": now + 600, **claims}
    return jwt.encode({key: value for key, value in payload.items() if value is not None}, secret, algorithm=algorithm)


def test_a_minted_token_verifies_with_its_claims() -> None:
    token = token_mint(
        identity="alice", grants=grants_from_names(["publish", "chat"], room="weekly"), ttl_s=3600,
        name="Alice A.", metadata='{"team": "blue"}',
    )
    claims = token_verify(token)
    assert claims.identity == "alice" and claims.api_key == "main"
    assert claims.name == "Alice A." and claims.metadata == '{"team": "blue"}'
    assert claims.grants == VideoGrants(
        room="weekly", room_join=True, can_publish=True, can_subscribe=False, can_publish_data=True
    )
    assert abs(claims.expires_at - (time.time() + 3600)) < 5
    assert len(claims.token_id) == 32


def test_a_hand_made_token_gets_livekits_defaults_for_absent_grants() -> None:
    claims = token_verify(hand_made({"video": {"room": "weekly", "roomJoin": True}}))
    assert claims.grants.can_publish and claims.grants.can_subscribe and claims.grants.can_publish_data
    assert not claims.grants.room_admin and not claims.grants.room_record and not claims.grants.hidden
    assert claims.grants.may_publish("screen_share")
    limited = token_verify(hand_made({"video": {"room": "w", "roomJoin": True, "canPublishSources": ["camera"]}}))
    assert limited.grants.may_publish("camera") and not limited.grants.may_publish("microphone")


def test_tokens_minted_by_livekits_server_sdk_verify() -> None:
    from livekit import api

    token = (
        api.AccessToken("next", OTHER_SECRET)
        .with_identity("bob")
        .with_name("Bob B.")
        .with_metadata("from livekit-api")
        .with_ttl(timedelta(minutes=5))
        .with_grants(
            api.VideoGrants(
                room_join=True, room="weekly", can_subscribe=False, room_admin=True,
                can_publish_sources=["camera", "microphone"],
            )
        )
        .to_jwt()
    )
    claims = token_verify(token)
    assert claims.api_key == "next" and claims.identity == "bob" and claims.name == "Bob B."
    assert claims.metadata == "from livekit-api"
    assert claims.grants == VideoGrants(
        room="weekly", room_join=True, can_publish=True, can_subscribe=False, can_publish_data=True,
        can_publish_sources=("camera", "microphone"), room_admin=True,
    )


@pytest.mark.parametrize(
    ("token", "problem", "words"),
    [
        ("not.a.jwt", "token_invalid", "not a JWT"),
        (lambda: hand_made({}, secret="the-wrong-secret-but-long-enough-to-be-hs256"), "token_invalid", "signature"),
        (lambda: hand_made({"iss": "stranger"}), "token_invalid", "API key"),
        (lambda: hand_made({"exp": int(time.time()) - CLOCK_SKEW_S - 5}), "token_expired", "expired"),
        (lambda: hand_made({"nbf": int(time.time()) + CLOCK_SKEW_S + 30}), "token_not_yet_valid", "not valid yet"),
        (lambda: hand_made({"exp": None}), "token_invalid", "exp"),
        (lambda: hand_made({"sub": None}), "token_invalid", "sub"),
        (lambda: hand_made({"video": {"roomAdmin": "yes"}}), "token_invalid", "roomAdmin"),
        (lambda: hand_made({"video": {"canPublishSources": ["webcam"]}}), "token_invalid", "canPublishSources"),
        (lambda: hand_made({}, secret=SECRET * 2, algorithm="HS512"), "token_invalid", "HS256"),
        (
            lambda: jwt.encode({"iss": "main", "sub": "a", "exp": 2**40}, None, algorithm="none"),
            "token_invalid", "HS256",
        ),
    ],
    ids=[
        "garbage", "wrong-signature", "unknown-key", "expired", "not-yet-valid", "no-exp", "no-sub",
        "grant-of-wrong-type", "unknown-source", "other-algorithm", "alg-none",
    ],
)
def test_refusals_say_why(token: Any, problem: str, words: str) -> None:
    with pytest.raises(TokenError) as refused:
        token_verify(token() if callable(token) else token)
    assert refused.value.problem == problem
    assert words in refused.value.message


def test_clock_skew_of_ten_seconds_is_tolerated() -> None:
    now = int(time.time())
    assert token_verify(hand_made({"exp": now - CLOCK_SKEW_S + 3})).identity == "alice"
    assert token_verify(hand_made({"nbf": now + CLOCK_SKEW_S - 3})).identity == "alice"


def test_a_rotated_out_key_no_longer_verifies(settings) -> None:  # type: ignore[no-untyped-def]
    token = token_mint(identity="alice", grants=VideoGrants(room="r", room_join=True), api_key="next")
    assert token_verify(token).api_key == "next"
    settings.API_KEYS = {"main": SECRET}
    with pytest.raises(TokenError, match="API key"):
        token_verify(token)


def test_room_token_command_prints_a_token_with_the_named_grants(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("room_token", "--identity", "carol", "--room", "weekly", "--grant", "subscribe,record", "--ttl", "15m")
    claims = token_verify(capsys.readouterr().out.strip())
    assert claims.identity == "carol"
    assert claims.grants == VideoGrants(
        room="weekly", room_join=True, can_publish=False, can_subscribe=True, can_publish_data=False, room_record=True
    )
    assert abs(claims.expires_at - (time.time() + 900)) < 5
    with pytest.raises(CommandError, match="unknown grant"):
        call_command("room_token", "--identity", "c", "--room", "w", "--grant", "superpowers")
    with pytest.raises(CommandError, match="--ttl"):
        call_command("room_token", "--identity", "c", "--room", "w", "--ttl", "forever")
