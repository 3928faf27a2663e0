"""Access tokens for the simulated participants, signed as the application
around the server signs them (LiveKit's claim layout, docs/protocol.md)."""

from __future__ import annotations

import time
import uuid

import jwt

from rooms.access_tokens import ALGORITHM, VideoGrants


def access_token(key: str, secret: str, *, identity: str, room: str, publish: bool, ttl_s: int) -> str:
    """A token that lets ``identity`` join ``room``, subscribe, chat and (a publisher) publish."""
    now = int(time.time())
    grants = VideoGrants(room=room, room_join=True, can_publish=publish, can_subscribe=True, can_publish_data=True)
    claims = {"iss": key, "sub": identity, "nbf": now, "exp": now + ttl_s, "jti": uuid.uuid4().hex,
              "video": grants.claims()}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
