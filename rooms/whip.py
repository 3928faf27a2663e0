"""WHIP (RFC 9725) publishers and WHEP players: who is admitted, and what a
publish, a play and their deletion do.

A WHIP publisher is a participant like any other: its session joins the
room and publishes one camera stream through ``services`` and ``streams``,
so the room sees ``room.joined`` and ``room.published``, history and
records follow, moderators may remove it. A WHEP player plays one stream of
a room without joining it. Both live in a ``HeadlessSession`` of the
process that took the offer (``rooms.headless`` says how they end); their
resource is their session id, unguessable, and a ``DELETE`` of it works on
any process.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from rooms import events, permissions, protocol, runtime, services, streams
from rooms.access_tokens import TokenError, token_verify
from rooms.headless import HeadlessSession, MediaAnswer, Role
from rooms.live.context import process_context
from rooms.permissions import Forbidden
from rooms.server_messages import RoomFailed
from rooms.session import ServiceError, Session
from rooms.turn import ice_servers_for

# The node answers once its ICE candidates are gathered: well under a second
# on a healthy node.
ANSWER_TIMEOUT_S = 15.0
MAX_SDP_BYTES = protocol.MAX_FRAME_BYTES

_MEDIA_LINE_RE = re.compile(r"^m=(audio|video) ([0-9]+) ", re.MULTILINE)
_RTPMAP_RE = re.compile(r"^a=rtpmap:[0-9]+ ([A-Za-z0-9-]+)/", re.MULTILINE)


class WhipRefused(Exception):
    """A publish, play or deletion that is refused: a stable code and a sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Admission:
    """Who an admitted request acts as: an access token, or a login made up here."""

    token: str | None = None
    username: str | None = None


@dataclass(frozen=True)
class Started:
    """A publish or play that started: its resource, its stream, the answer."""

    resource: str
    stream: str
    sdp: str
    # For the Link header: admitted by a bearer token, so ICE_SERVERS as
    # configured, plus TURN credentials of the session's own.
    ice_servers: tuple[dict[str, Any], ...] = ()


def admission(bearer: str | None, *, login_prefix: str) -> Admission:
    """Admit a bearer, or refuse it.

    With ``ROOM_AUTH=token`` the bearer is an access token (verified when the
    session opens). Open rooms have no logins to check, so WHIP and WHEP
    there need ``WHIP_TOKEN``, a shared secret: a request bearing it acts as
    ``<login_prefix>-<random>``; an access token (with ``API_KEYS``) as its
    identity, with its grants.
    """
    if settings.ROOM_AUTH == "open" and not settings.WHIP_TOKEN:
        raise WhipRefused(
            "whip_disabled",
            "WHIP and WHEP are off on this server: its rooms are open (ROOM_AUTH=open) and WHIP_TOKEN is not set",
        )
    if bearer is None:
        raise WhipRefused("token_required", "send Authorization: Bearer <token>")
    if settings.ROOM_AUTH == "token":
        return Admission(token=bearer)
    if hmac.compare_digest(bearer.encode(), settings.WHIP_TOKEN.encode()):
        return Admission(username=f"{login_prefix}-{secrets.token_hex(4)}")
    if not settings.API_KEYS:
        raise WhipRefused("token_invalid", "the bearer token is not this server's WHIP_TOKEN")
    try:
        token_verify(bearer)
    except TokenError as error:
        raise WhipRefused(
            error.problem, f"the bearer token is not this server's WHIP_TOKEN, nor an access token: {error.message}"
        ) from None
    return Admission(token=bearer)


def sdp_problem(sdp: str, *, role: Role) -> str | None:
    """What makes ``sdp`` no offer this server can take, or None."""
    if len(sdp.encode()) > MAX_SDP_BYTES:
        return f"the offer is larger than {MAX_SDP_BYTES} bytes"
    if not sdp.startswith("v=0"):
        return "an SDP offer starts with v=0"
    media = {kind for kind, port in _MEDIA_LINE_RE.findall(sdp) if port != "0"}
    if not media:
        return "the offer has no audio or video section (m=audio, m=video)"
    if "a=fingerprint:" not in sdp or "a=ice-ufrag:" not in sdp:
        return "the offer lacks a=fingerprint or a=ice-ufrag (a WebRTC offer has both)"
    if role == "publish" and "video" in media:
        codec = settings.ROOM_VIDEO_CODEC.upper()
        if codec not in {name.upper() for name in _RTPMAP_RE.findall(sdp)}:
            return f"the offer's video has no {codec}, the one video codec of this server's rooms"
    return None


async def _session_open(headless: HeadlessSession, who: Admission, address: str) -> Session:
    session, status = await services.session_connect(
        channel=headless.channel_name,
        process=(await runtime.ensure_started()).process_id,
        username=who.username,
        resume=None,
        request_id=None,
        token=who.token,
        address=address,
    )
    if session is None:
        reason = str(status.reason)
        message = status.message if isinstance(status.message, str) else "the token's identity is not a valid login"
        raise WhipRefused(reason, message)
    headless.session_attach(session)
    return session


def _answered(answer: MediaAnswer, session: Session) -> Started:
    if answer.sdp is None or answer.stream is None:
        raise WhipRefused(answer.refusal or "node_unavailable", answer.detail or _REFUSALS.get(
            answer.refusal or "", "the media node refused the offer"
        ))
    ice = ice_servers_for(identity=session.username, authenticated=True, now=time.time())
    return Started(resource=session.sid, stream=answer.stream, sdp=answer.sdp, ice_servers=tuple(ice.servers))


_REFUSALS = {
    "limit": "this participant already publishes a camera in the room",
    "node_unavailable": "no media node is available; try again",
    "node_stopped": "the media node is stopping; try again",
    "unknown_stream": "no such stream in this room",
    "codec_not_supported": "the offer has none of the room's codecs",
    "no_media": "the offer could not be read or has no media",
    "ended": "the session ended before the media node answered",
}


async def whip_publish(*, room: str, sdp: str, who: Admission, address: str, record: bool) -> Started:
    """A WHIP publisher joins ``room`` (created if need be) and publishes its offer as a camera."""
    headless = await HeadlessSession.open("publish")
    try:
        session = await _session_open(headless, who, address)
        try:
            # Before the room sees anyone: a publisher that may not publish never joins.
            permissions.join_check(session, room)
            permissions.publish_check(session, "camera", sdp)
            if record:
                permissions.record_check(session)
        except Forbidden as refusal:
            raise WhipRefused("forbidden", refusal.message) from None
        joined = await services.room_join(session=session, room=room, record=False, request_id=None)
        if isinstance(joined, RoomFailed):
            raise WhipRefused(joined.code, joined.message)
        headless.room = room
        try:
            refused = await streams.stream_publish(
                session=session, room=room, kind="camera", record=record, sdp=sdp, request_id=None
            )
        except ServiceError as error:
            raise WhipRefused(error.code, error.message) from None
        if refused is not None:
            info = str(refused.info)
            raise WhipRefused(info, _REFUSALS.get(info, info))
        headless.stream = next(iter(session.publishes))
        return _answered(await headless.answer(ANSWER_TIMEOUT_S), session)
    except BaseException:
        # Refused, failed, or the client went away mid-request: nothing stays.
        await asyncio.shield(headless.end())
        raise


async def whep_play(*, room: str, stream: str, sdp: str, who: Admission, address: str) -> Started:
    """A WHEP player plays ``stream`` of ``room`` (without joining the room)."""
    headless = await HeadlessSession.open("play")
    try:
        session = await _session_open(headless, who, address)
        # It follows the room's events: an unpublished stream or an ended
        # room ends the play, whichever node the stream was on.
        headless.room, headless.stream = room, stream
        await events.room_group_add(room, headless.channel_name)
        try:
            refused = await streams.stream_watch(session=session, room=room, stream=stream, sdp=sdp, request_id=None)
        except ServiceError as error:
            raise WhipRefused(error.code, error.message) from None
        if refused is not None:
            info = str(refused.info)
            raise WhipRefused(info, _REFUSALS.get(info, info))
        return _answered(await headless.answer(ANSWER_TIMEOUT_S), session)
    except BaseException:
        await asyncio.shield(headless.end())
        raise


async def whip_delete(*, room: str, resource: str) -> None:
    """The publisher's stream ends and it leaves the room (``room.unpublished``, ``room.left`` ``leave``)."""
    state = process_context().live_state
    if room not in await state.session_rooms(resource):
        raise WhipRefused("not_found", f"no WHIP session {resource!r} in room {room!r}")
    await services.session_end(sid=resource, reason="deleted")


async def whep_delete(*, room: str, stream: str, resource: str) -> None:
    """The player's play of ``stream`` stops."""
    state = process_context().live_state
    info = await state.session_get(resource)
    # A player is in no room; a participant's session is no WHEP resource.
    if info is None or await state.session_rooms(resource):
        raise WhipRefused("not_found", f"no WHEP session {resource!r}")
    await streams.play_stop(room=room, stream=stream, player=info.channel)
    await services.session_end(sid=resource, reason="deleted")


def ice_server_links(servers: Sequence[dict[str, Any]]) -> list[str]:
    """``servers`` as RFC 9725 Link header values (rel="ice-server")."""
    links = []
    for server in servers:
        urls = server.get("urls", [])
        for url in [urls] if isinstance(urls, str) else urls:
            link = f'<{url}>; rel="ice-server"'
            if "username" in server:
                link += f'; username="{server["username"]}"; credential="{server.get("credential", "")}"'
                link += '; credential-type="password"'
            links.append(link)
    return links
