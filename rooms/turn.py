"""The ICE servers a client is given: short-lived TURN credentials per session.

A TURN relay must not be an open proxy, so clients get credentials; but
credentials written into the settings and sent to everyone who opens a
WebSocket would be anyone's for as long as they are valid. With
``TURN_URLS`` and ``TURN_SHARED_SECRET`` every session is given its own,
minted by the TURN REST API scheme (draft-uberti-behave-turn-rest, what
coturn's ``use-auth-secret`` checks): the username is ``<expiry>:<identity>``
(the expiry in Unix seconds), the credential the base64 HMAC-SHA1 of that
username keyed with the secret the TURN server shares. The TURN server
needs no call to this server to check them, and refuses them after the
expiry.

``ICE_SERVERS`` entries that carry credentials go only to clients that
proved who they are (an access token); anonymous sessions get its STUN
URLs without credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from django.conf import settings

# A refresh goes out this share of the lifetime before the credentials
# expire, so a client has them well before it might need them.
REFRESH_BEFORE_SHARE = 0.2


@dataclass(frozen=True)
class TurnCredentials:
    username: str
    credential: str
    # Unix seconds after which the TURN server refuses them.
    expires_at: int


def turn_credentials_mint(*, secret: str, identity: str, now: float, ttl_s: int) -> TurnCredentials:
    """TURN REST API credentials for ``identity``, valid ``ttl_s`` seconds from ``now``."""
    expires_at = int(now) + ttl_s
    username = f"{expires_at}:{identity}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredentials(username=username, credential=base64.b64encode(digest).decode(), expires_at=expires_at)


def stun_only(servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The STUN URLs of ``servers`` that need no credentials, one entry per configured entry."""
    kept = []
    for server in servers:
        if "username" in server or "credential" in server:
            continue
        urls = server["urls"] if isinstance(server["urls"], list) else [server["urls"]]
        stun = [url for url in urls if url.startswith(("stun:", "stuns:"))]
        if stun:
            kept.append({"urls": stun})
    return kept


@dataclass(frozen=True)
class IceServers:
    """What one client is given, and until when its TURN credentials hold."""

    servers: list[dict[str, Any]]
    # Unix seconds; None when nothing in ``servers`` expires.
    expires_at: int | None = None


def ice_servers_refresh_at(expires_at: int) -> float:
    """When a client whose TURN credentials expire at ``expires_at`` gets fresh ones (Unix seconds)."""
    return expires_at - settings.TURN_CREDENTIAL_TTL_S * REFRESH_BEFORE_SHARE


def ice_servers_for(*, identity: str, authenticated: bool, now: float) -> IceServers:
    """The ICE servers for a client of ``identity``: ``ICE_SERVERS`` (STUN only
    unless ``authenticated``), then TURN with credentials of its own when
    ``TURN_URLS`` is set."""
    configured: list[dict[str, Any]] = settings.ICE_SERVERS
    servers = [dict(server) for server in configured] if authenticated else stun_only(configured)
    if not settings.TURN_URLS or not settings.TURN_SHARED_SECRET:
        return IceServers(servers)
    minted = turn_credentials_mint(
        secret=settings.TURN_SHARED_SECRET, identity=identity, now=now, ttl_s=settings.TURN_CREDENTIAL_TTL_S
    )
    servers.append({"urls": list(settings.TURN_URLS), "username": minted.username, "credential": minted.credential})
    return IceServers(servers, expires_at=minted.expires_at)
