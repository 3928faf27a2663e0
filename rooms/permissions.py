"""What a session may do, from its access token's grants.

A session without a token (``ROOM_AUTH=open``) may do what every client
could always do: join any room, publish, play, chat, record. Moderation
always needs a token with ``roomAdmin``. A refusal names the missing grant.
"""

from __future__ import annotations

import re

from rooms.access_tokens import Source, VideoGrants
from rooms.server_messages import StreamKind
from rooms.session import ServiceError, Session

_MEDIA_LINE_RE = re.compile(r"^m=(audio|video) (\d+)", re.MULTILINE)


class Forbidden(ServiceError):
    def __init__(self, message: str) -> None:
        super().__init__("forbidden", message)


def _grants(session: Session) -> VideoGrants | None:
    return session.claims.grants if session.claims is not None else None


def join_check(session: Session, room: str) -> None:
    grants = _grants(session)
    if grants is None:
        return
    if not grants.room_join:
        raise Forbidden("joining a room needs the roomJoin grant")
    if grants.room != room:
        raise Forbidden(f"the token's roomJoin grant is for room {grants.room!r}, not {room!r}")


def record_check(session: Session) -> None:
    grants = _grants(session)
    if grants is not None and not grants.room_record:
        raise Forbidden("recording needs the roomRecord grant")


def records_allowed(session: Session) -> bool:
    """May this session get the link to its room's records?"""
    grants = _grants(session)
    return grants is None or grants.room_record or grants.room_admin


def publish_sources(kind: StreamKind, sdp: str) -> list[Source]:
    """The sources an offer would publish: a camera's audio is the microphone."""
    media = {kind for kind, port in _MEDIA_LINE_RE.findall(sdp) if port != "0"}
    sources: list[Source] = []
    if "video" in media:
        sources.append("camera" if kind == "camera" else "screen_share")
    if "audio" in media:
        sources.append("microphone" if kind == "camera" else "screen_share_audio")
    return sources


def publish_check(session: Session, kind: StreamKind, sdp: str) -> None:
    grants = _grants(session)
    if grants is None:
        return
    if grants.hidden:
        raise Forbidden("a hidden participant cannot publish")
    if not grants.can_publish:
        raise Forbidden("publishing needs the canPublish grant")
    refused = [source for source in publish_sources(kind, sdp) if not grants.may_publish(source)]
    if refused:
        raise Forbidden(f"the canPublishSources grant does not include {', '.join(refused)}")


def subscribe_check(session: Session) -> None:
    grants = _grants(session)
    if grants is not None and not grants.can_subscribe:
        raise Forbidden("playing a stream needs the canSubscribe grant")


def chat_check(session: Session) -> None:
    grants = _grants(session)
    if grants is not None and not grants.can_publish_data:
        raise Forbidden("sending chat messages needs the canPublishData grant")


def is_room_admin(session: Session, room: str) -> bool:
    grants = _grants(session)
    return grants is not None and grants.room_admin and grants.room in ("", room)


def moderation_check(session: Session, room: str) -> None:
    if not is_room_admin(session, room):
        raise Forbidden(f"moderating room {room!r} needs a token with the roomAdmin grant for it")


def hidden(session: Session) -> bool:
    grants = _grants(session)
    return grants is not None and grants.hidden
