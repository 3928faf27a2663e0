"""Access tokens: who a client is and what it may do, signed by the
application that sent it here.

A token is a JWT signed with HS256 in the claim layout of LiveKit access
tokens, so tokens minted by LiveKit's server SDKs work unchanged: ``iss`` is
the API key whose secret signed it, ``sub`` the identity (the login), ``name``
a display name, ``metadata`` a string shown to others, ``nbf``/``exp`` its
validity and ``video`` the grants. Keys come from ``API_KEYS``; several may be
valid at once so that a key can be rotated without cutting anyone off.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from rooms.validation import validation_problems

ALGORITHM = "HS256"
# Clocks of the minting application and this server may disagree this much.
CLOCK_SKEW_S = 10
DEFAULT_TTL_S = 6 * 3600

SOURCES = ("camera", "microphone", "screen_share", "screen_share_audio")
Source = Literal["camera", "microphone", "screen_share", "screen_share_audio"]

# ``manage.py room_token --grant`` names and the grants they switch on.
GRANT_NAMES = {
    "join": "room_join",
    "create": "room_create",
    "publish": "can_publish",
    "subscribe": "can_subscribe",
    "chat": "can_publish_data",
    "record": "room_record",
    "admin": "room_admin",
    "hidden": "hidden",
}

TokenProblem = Literal["token_invalid", "token_expired", "token_not_yet_valid"]


@dataclass(frozen=True)
class VideoGrants:
    """What a token allows, with LiveKit's defaults for absent claims
    (publish, subscribe and data are allowed unless switched off)."""

    room: str = ""
    room_join: bool = False
    room_create: bool = False
    can_publish: bool = True
    can_subscribe: bool = True
    can_publish_data: bool = True
    # Empty: every source.
    can_publish_sources: tuple[Source, ...] = ()
    room_record: bool = False
    room_admin: bool = False
    hidden: bool = False

    def may_publish(self, source: Source) -> bool:
        return self.can_publish and (not self.can_publish_sources or source in self.can_publish_sources)

    def claims(self) -> dict[str, Any]:
        """The ``video`` claim, camelCase as LiveKit writes it."""
        return _VideoClaim(
            room=self.room,
            roomJoin=self.room_join,
            roomCreate=self.room_create,
            canPublish=self.can_publish,
            canSubscribe=self.can_subscribe,
            canPublishData=self.can_publish_data,
            canPublishSources=list(self.can_publish_sources) or None,
            roomRecord=self.room_record,
            roomAdmin=self.room_admin,
            hidden=self.hidden,
        ).model_dump(exclude_none=True)


@dataclass(frozen=True)
class AccessClaims:
    """A verified token."""

    api_key: str
    identity: str
    grants: VideoGrants
    expires_at: int
    not_before: int = 0
    name: str = ""
    metadata: str = ""
    token_id: str = ""


class TokenError(Exception):
    """A token that is not accepted, and why."""

    def __init__(self, problem: TokenProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


class _VideoClaim(BaseModel):
    # LiveKit adds grants over time (ingressAdmin, recorder, agent...): they
    # are not errors, and mean nothing here.
    model_config = ConfigDict(extra="ignore")

    room: StrictStr = ""
    roomJoin: StrictBool | None = None
    roomCreate: StrictBool | None = None
    canPublish: StrictBool | None = None
    canSubscribe: StrictBool | None = None
    canPublishData: StrictBool | None = None
    canPublishSources: list[Source] | None = None
    roomRecord: StrictBool | None = None
    roomAdmin: StrictBool | None = None
    hidden: StrictBool | None = None

    def grants(self) -> VideoGrants:
        return VideoGrants(
            room=self.room,
            room_join=bool(self.roomJoin),
            room_create=bool(self.roomCreate),
            can_publish=self.canPublish is not False,
            can_subscribe=self.canSubscribe is not False,
            can_publish_data=self.canPublishData is not False,
            can_publish_sources=tuple(dict.fromkeys(self.canPublishSources or ())),
            room_record=bool(self.roomRecord),
            room_admin=bool(self.roomAdmin),
            hidden=bool(self.hidden),
        )


class _Claims(BaseModel):
    model_config = ConfigDict(extra="ignore")

    iss: StrictStr
    sub: StrictStr = Field(min_length=1)
    exp: StrictInt
    nbf: StrictInt = 0
    name: StrictStr = ""
    metadata: StrictStr = ""
    jti: StrictStr = ""
    video: _VideoClaim = Field(default_factory=_VideoClaim)


def api_keys() -> dict[str, str]:
    """API key -> secret, from the ``API_KEYS`` setting."""
    keys: dict[str, str] = settings.API_KEYS
    return keys


def token_mint(
    *,
    identity: str,
    grants: VideoGrants,
    ttl_s: int = DEFAULT_TTL_S,
    name: str = "",
    metadata: str = "",
    api_key: str | None = None,
    now: int | None = None,
) -> str:
    """A signed token for ``identity``, valid from now for ``ttl_s`` seconds,
    signed with ``api_key``'s secret (by default the first of ``API_KEYS``)."""
    keys = api_keys()
    if not keys:
        raise TokenError("token_invalid", "API_KEYS is empty: there is no key to sign tokens with")
    key = api_key if api_key is not None else next(iter(keys))
    if key not in keys:
        raise TokenError("token_invalid", f"API key {key!r} is not in API_KEYS")
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": key,
        "sub": identity,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": uuid.uuid4().hex,
        "video": grants.claims(),
    }
    if name:
        claims["name"] = name
    if metadata:
        claims["metadata"] = metadata
    return jwt.encode(claims, keys[key], algorithm=ALGORITHM)


def token_verify(token: str, *, now: float | None = None) -> AccessClaims:
    """The claims of a token signed by one of ``API_KEYS``, or TokenError."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenError("token_invalid", "the token is not a JWT") from None
    if header.get("alg") != ALGORITHM:
        raise TokenError("token_invalid", f"tokens are signed with {ALGORITHM}")
    key = unverified.get("iss")
    secret = api_keys().get(key) if isinstance(key, str) else None
    if secret is None:
        raise TokenError("token_invalid", "the token's API key (iss) is not known to this server")
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            leeway=CLOCK_SKEW_S,
            options={"require": ["exp", "iss", "sub"], "verify_iat": False},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token_expired", "the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenError("token_not_yet_valid", "the token is not valid yet (nbf)") from None
    except jwt.InvalidSignatureError:
        raise TokenError("token_invalid", "the token's signature does not verify") from None
    except jwt.PyJWTError as error:
        raise TokenError("token_invalid", f"the token is not valid: {error}") from None
    try:
        claims = _Claims.model_validate(payload)
    except ValidationError as error:
        problems = validation_problems(error, whole="claims")
        raise TokenError("token_invalid", f"the token's claims are not valid: {problems}") from None
    return AccessClaims(
        api_key=claims.iss,
        identity=claims.sub,
        grants=claims.video.grants(),
        expires_at=claims.exp,
        not_before=claims.nbf,
        name=claims.name,
        metadata=claims.metadata,
        token_id=claims.jti,
    )


def grants_from_names(names: list[str], *, room: str, sources: list[str] | None = None) -> VideoGrants:
    """Grants from ``room_token --grant`` names: a token for one room that
    may join it and do exactly what is named."""
    unknown = sorted(set(names) - set(GRANT_NAMES))
    if unknown:
        raise ValueError(f"unknown grant {', '.join(unknown)}; known: {', '.join(GRANT_NAMES)}")
    bad_sources = sorted(set(sources or ()) - set(SOURCES))
    if bad_sources:
        raise ValueError(f"unknown source {', '.join(bad_sources)}; known: {', '.join(SOURCES)}")
    chosen = {GRANT_NAMES[name] for name in names} | {"room_join"}
    return VideoGrants(
        room=room,
        room_join=True,
        room_create="room_create" in chosen,
        can_publish="can_publish" in chosen,
        can_subscribe="can_subscribe" in chosen,
        can_publish_data="can_publish_data" in chosen,
        can_publish_sources=tuple(sources or ()),  # type: ignore[arg-type]
        room_record="room_record" in chosen,
        room_admin="room_admin" in chosen,
        hidden="hidden" in chosen,
    )
