"""Room actions: every side effect of a join, leave, chat message, drop or
finalization happens here, in one place: live state, history rows, events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from pydantic import MISSING

from ops import metrics
from ops.logs import log_context, log_context_bind
from rooms import events, history, live_epoch, permissions, protocol, streams
from rooms.access_tokens import AccessClaims, TokenError, token_verify
from rooms.database import db_call
from rooms.history import ChatRecord
from rooms.history_outbox import chat_entry, entry_text
from rooms.live.chat_send import ChatSend, Outcome
from rooms.live.context import process_context
from rooms.live.contract import ClaimedRoom, LiveState, SessionInfo
from rooms.media.timing import now_ms
from rooms.models import Participant, Room
from rooms.permissions import Forbidden
from rooms.server_messages import (
    ChatMessage,
    Ok,
    ParticipantRef,
    RoomFailed,
    RoomFinalized,
    RoomJoined,
    RoomLeft,
    RoomMessageEvent,
    RoomRecording,
    RoomState,
    SessionIceServers,
    SessionStatus,
    Stream,
)
from rooms.server_messages import Participant as ParticipantInRoom
from rooms.session import Membership, ServiceError, Session
from rooms.signals import room_records_url
from rooms.turn import ice_servers_for

logger = logging.getLogger(__name__)

# How long a finalizer may hold a room before a sweep takes it over, and how
# long a join waits for a room being finalized before it gives up.
FINALIZE_LEASE_MS = 10_000
JOIN_WAIT_SECONDS = 15.0


# --- Sessions -----------------------------------------------------------------


async def session_connect(
    *,
    channel: str,
    process: str,
    username: str | None,
    resume: str | None,
    request_id: str | None,
    token: str | None = None,
    address: str = "",
) -> tuple[Session | None, SessionStatus]:
    """Open a session: the session (None if refused) and the reply.

    With a token the login is the token's identity; ``ROOM_AUTH=token``
    requires one.
    """
    claims: AccessClaims | None = None
    if token is not None:
        try:
            claims = token_verify(token)
        except TokenError as error:
            return None, SessionStatus.failed(request_id, error.problem, error.message)
        login = protocol.username_normalized(claims.identity)
        if login is None:
            return None, SessionStatus.failed(
                request_id, "invalid_username", "the token's identity (sub) is not a valid login"
            )
    elif settings.ROOM_AUTH == "token":
        return None, SessionStatus.failed(
            request_id, "token_required", "this server admits sessions with a signed access token only"
        )
    else:
        login = protocol.username_normalized(username) if username is not None else None
        if login is None:
            return None, SessionStatus.failed(request_id, "invalid_username")
    state = process_context().live_state
    # Opened under the state's current epoch; sessions of a lost one end first.
    epoch = await live_epoch.epoch_current()
    if resume:
        previous = await state.session_get(resume)
        if previous is not None:
            await session_drop(sid=previous.sid, reason="resumed")
    info = SessionInfo(sid=secrets.token_urlsafe(24), username=login, channel=channel, process=process)
    await state.session_open(info)
    log_context_bind(session=info.sid, identity=login)
    logger.info("session connected%s", " with an access token" if claims else "")
    ice = ice_servers_for(identity=login, authenticated=claims is not None, now=time.time())
    reply = SessionStatus.established(
        request_id,
        session=info.sid,
        protocol=protocol.PROTOCOL_VERSION,
        ice_servers=ice.servers,
        ice_servers_expires=ice.expires_at * 1000 if ice.expires_at is not None else MISSING,
        identity=login,
        grants=claims.grants.claims() if claims else MISSING,
        expires=claims.expires_at * 1000 if claims else MISSING,
    )
    session = Session(info=info, epoch=epoch, claims=claims, address=address, ice_servers_expires_at=ice.expires_at)
    return session, reply


def session_ice_servers_renew(*, session: Session) -> SessionIceServers | None:
    """Fresh TURN credentials for ``session`` (None when it has none to renew)."""
    ice = ice_servers_for(identity=session.username, authenticated=session.claims is not None, now=time.time())
    session.ice_servers_expires_at = ice.expires_at
    if ice.expires_at is None:
        return None
    return SessionIceServers(ice_servers=ice.servers, expires=ice.expires_at * 1000)


async def session_refresh(*, session: Session, token: str, request_id: str | None) -> Ok:
    """A new token for the same identity: new grants and a new expiry."""
    try:
        claims = token_verify(token)
    except TokenError as error:
        raise ServiceError(error.problem, error.message) from None
    if protocol.username_normalized(claims.identity) != session.username:
        raise Forbidden(f"the token is for {claims.identity!r}; this session is {session.username!r}")
    session.claims = claims
    return Ok(re=request_id)


async def session_drop(*, sid: str, reason: str = "disconnect") -> None:
    """End a session whose connection is gone, or is being replaced.

    Safe to call from any process, any number of times: each room membership
    is removed by exactly one caller, and only that caller tells the room.
    """
    state = process_context().live_state
    info = await state.session_get(sid)
    if info is None:
        return
    if reason != "disconnect":
        await events.session_end_send(info.channel, reason)
    for room in await state.session_rooms(sid):
        await membership_end(state, info=info, room=room, reason="disconnect")
    await state.session_close(info)


async def session_end(*, sid: str, reason: str) -> bool:
    """End a session on its client's behalf from any process (a WHIP or WHEP
    ``DELETE``): it leaves each of its rooms as ``room.leave`` would, and its
    connection is told ``reason`` and lets go. False if there was no such session."""
    context = process_context()
    state = context.live_state
    info = await state.session_get(sid)
    if info is None:
        return False
    for room in await state.session_rooms(sid):
        await membership_end(state, info=info, room=room, reason="leave")
    await state.session_close(info)
    await events.session_end_send(info.channel, reason)
    await context.history_outbox.flush()
    return True


async def membership_end(
    state: LiveState,
    *,
    info: SessionInfo,
    room: str,
    reason: Literal["leave", "disconnect", "kicked"],
    by: str | MISSING = MISSING,
) -> None:
    with log_context(room=room, session=info.sid, identity=info.username):
        await _membership_end(state, info=info, room=room, reason=reason, by=by)


async def _membership_end(
    state: LiveState,
    *,
    info: SessionInfo,
    room: str,
    reason: Literal["leave", "disconnect", "kicked"],
    by: str | MISSING,
) -> None:
    explicit = reason != "disconnect"
    current = now_ms()
    result = await state.room_leave(
        name=room,
        login=info.username,
        sid=info.sid,
        now_ms=current,
        lease_ms=FINALIZE_LEASE_MS,
        idle_deadline_ms=None if explicit else current + settings.ROOM_IDLE_TIMEOUT_MS,
    )
    if result.outcome == "absent":
        return
    logger.info("left the room (%s)", reason)
    # Recorded before anything else can fail, and applied when the database
    # can take it: the room hears of the leave whatever the database does.
    outbox = process_context().history_outbox
    await outbox.write(
        "participant_leave",
        live_id=result.room_id,
        login=info.username,
        session=info.sid,
        reason=_LEAVE_REASONS[reason].value,
        room_idle=result.outcome == "idle",
        at_ms=current,
    )
    await streams.streams_end_for(room=room, participant=info.username, channel=info.channel)
    await events.room_group_discard(room, info.channel)
    if result.outcome == "left":
        if not _profile_of(result.profile).hidden:
            await events.room_event_send(
                room,
                RoomLeft(room=room, participant=ParticipantRef(name=info.username), reason=reason, by=by),
                seq=result.seq,
                # A kicked connection was told first, directly.
                exclude_channel=info.channel if reason == "kicked" else None,
            )
    elif result.outcome == "finalize":
        await _room_finalize_claimed(state, ClaimedRoom(room, result.room_id, result.record, was_idle=False))


_LEAVE_REASONS = {
    "leave": Participant.LeaveReason.LEAVE,
    "disconnect": Participant.LeaveReason.DISCONNECT,
    "kicked": Participant.LeaveReason.KICKED,
}


# --- Profiles -------------------------------------------------------------------


@dataclass(frozen=True)
class _Profile:
    """What others see of a member besides its login, from its access token."""

    display_name: str = ""
    metadata: str = ""
    hidden: bool = False


def _profile_json(session: Session) -> str:
    claims = session.claims
    if claims is None or not (claims.name or claims.metadata or claims.grants.hidden):
        return ""
    return json.dumps({"display_name": claims.name, "metadata": claims.metadata, "hidden": claims.grants.hidden})


def _profile_of(raw: str) -> _Profile:
    if not raw:
        return _Profile()
    fields = json.loads(raw)
    return _Profile(fields.get("display_name", ""), fields.get("metadata", ""), bool(fields.get("hidden")))


def _participant(name: str, profile: _Profile, streams_: list[Stream] | None = None) -> ParticipantInRoom:
    return ParticipantInRoom(
        name=name,
        display_name=profile.display_name or MISSING,
        metadata=profile.metadata or MISSING,
        streams=streams_ or [],
    )


# --- Rooms --------------------------------------------------------------------


async def room_join(
    *, session: Session, room: str, record: bool, request_id: str | None
) -> RoomState | RoomFailed:
    if not protocol.room_name_valid(room):
        return RoomFailed(
            re=request_id, room=room, code="invalid_room",
            message="room names are 1-128 of A-Z a-z 0-9 - _ . not starting with '.' or '-'",
        )
    try:
        permissions.join_check(session, room)
        if record:
            permissions.record_check(session)
    except Forbidden as refusal:
        return RoomFailed(re=request_id, room=room, code="forbidden", message=refusal.message)
    quota_refusal = await _join_quota_refusal(session, room, request_id)
    if quota_refusal is not None:
        return quota_refusal
    state = process_context().live_state
    # Join the group first: events sent while the state is read are queued
    # behind the room.state reply, so the client misses nothing.
    await events.room_group_add(room, session.info.channel)
    deadline = time.monotonic() + JOIN_WAIT_SECONDS
    pause = 0.005
    profile = _profile_json(session)
    replaced: set[str] = set()
    while True:
        result = await state.room_join(
            name=room,
            login=session.username,
            sid=session.sid,
            new_room_id=uuid.uuid4().hex,
            record=record,
            max_participants=settings.ROOM_MAX_PARTICIPANTS,
            now_ms=now_ms(),
            profile=profile,
            max_rooms=settings.ROOMS_MAX,
        )
        holder = result.members.get(session.username)
        if result.outcome == "login_taken" and session.claims is not None and holder and holder not in replaced:
            # A signed identity is one person: their newer connection wins
            # (a reloaded tab, another device), and the older one is told.
            # Once per holder: one whose session is already gone is a ghost
            # the sweep removes, and the join answers login_taken meanwhile.
            replaced.add(holder)
            await session_drop(sid=holder, reason="replaced")
            continue
        if result.outcome != "busy":
            break
        # The room's previous life is being finalized; the join opens the
        # next one as soon as that is written.
        if time.monotonic() > deadline:
            await _group_discard_unless_member(session, room)
            return RoomFailed(re=request_id, room=room, code="try_again", message="the room is closing; join again")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)

    if result.outcome in ("login_taken", "full", "locked", "server_full"):
        await _group_discard_unless_member(session, room)
        if result.outcome == "server_full":
            metrics.RATE_LIMIT_REFUSALS.labels("rooms_max").inc()
            return RoomFailed(
                re=request_id, room=room, code="limit",
                message=f"the server has {settings.ROOMS_MAX} rooms, the most ROOMS_MAX allows; join an existing room",
            )
        if result.outcome == "login_taken":
            return RoomFailed(
                re=request_id, room=room, code="login_taken", message=f"{session.username!r} is already in the room"
            )
        if result.outcome == "locked":
            return RoomFailed(
                re=request_id, room=room, code="room_locked", message="a moderator locked the room: nobody can join"
            )
        return RoomFailed(
            re=request_id, room=room, code="room_full",
            message=f"the room has {settings.ROOM_MAX_PARTICIPANTS} participants",
        )
    own_profile = _profile_of(profile)
    logger.info(
        "%s the room (%d participants)", "created" if result.created else "joined" if result.outcome == "joined"
        else "joined again", len(result.members),
    )
    if result.outcome == "joined":
        session.rooms[room] = Membership(result.room_id, result.seq, record=result.record)
        await process_context().history_outbox.write(
            "participant_join",
            live_id=result.room_id,
            room_name=room,
            record=result.record,
            created=result.created,
            reactivated=result.reactivated,
            login=session.username,
            session=session.sid,
            joined_seq=result.seq,
            at_ms=now_ms(),
        )
        if not own_profile.hidden:
            await events.room_event_send(
                room,
                RoomJoined(room=room, participant=_participant(session.username, own_profile)),
                seq=result.seq,
                exclude_channel=session.info.channel,
            )
    published = await streams.room_participant_streams(room)
    # The room's row exists before the reply (the records link names it),
    # unless the database is away: then the join stands on the live state
    # and the row follows when the database is back.
    await process_context().history_outbox.flush()
    profiles = {name: _profile_of(result.profiles.get(name, "")) for name in result.members}
    return RoomState(
        re=request_id,
        room=room,
        record=result.record,
        # The browser SDK puts this codec first in its offers (setCodecPreferences).
        video_codec=settings.ROOM_VIDEO_CODEC,
        # The room's records page, signed for this room and this identity;
        # pages show it when the room ends.
        records_url=(
            _records_url(result.room_id, session.username) if permissions.records_allowed(session) else MISSING
        ),
        locked=result.locked,
        recorded_by=result.recorded_by or MISSING,
        participants=[
            _participant(name, profiles[name], published.get(name, []))
            for name in sorted(result.members) if name != session.username and not profiles[name].hidden
        ],
        history=[ChatMessage.model_validate_json(message) for message in result.history],
    )


async def _join_quota_refusal(session: Session, room: str, request_id: str | None) -> RoomFailed | None:
    """A join over the connection's join rate, its address's join rate, or the
    connection's rooms at once (a repeated join of its own room counts against
    the rates only)."""
    if not session.join_bucket.take():
        metrics.RATE_LIMIT_REFUSALS.labels("joins_per_connection").inc()
        return RoomFailed(
            re=request_id, room=room, code="rate_limited",
            message=f"at most {settings.JOINS_PER_SECOND:g} joins per second (JOINS_PER_SECOND); join again later",
        )
    # Connections without an address (in-process clients) share no bucket.
    if session.address and not await process_context().rate_limits.take(
        f"joins:ip:{session.address}", rate=settings.JOINS_PER_IP_PER_SECOND, burst=settings.JOINS_PER_IP_BURST
    ):
        metrics.RATE_LIMIT_REFUSALS.labels("joins_per_ip").inc()
        return RoomFailed(
            re=request_id, room=room, code="rate_limited",
            message=(
                f"at most {settings.JOINS_PER_IP_PER_SECOND:g} joins per second from one address "
                "(JOINS_PER_IP_PER_SECOND); join again later"
            ),
        )
    if room not in session.rooms and len(session.rooms) >= settings.ROOMS_PER_CONNECTION:
        metrics.RATE_LIMIT_REFUSALS.labels("rooms_per_connection").inc()
        return RoomFailed(
            re=request_id, room=room, code="limit",
            message=f"this connection is in {len(session.rooms)} rooms, the most ROOMS_PER_CONNECTION allows",
        )
    return None


def _records_url(room_live_id: str, identity: str) -> str | MISSING:
    """The room's records page, from whichever app keeps records (the hook's receiver)."""
    for _, url in room_records_url.send(sender=Room, room_live_id=room_live_id, identity=identity):
        if isinstance(url, str):
            return url
    return MISSING


async def _group_discard_unless_member(session: Session, room: str) -> None:
    if room not in session.rooms:
        await events.room_group_discard(room, session.info.channel)


async def room_leave(*, session: Session, room: str, request_id: str | None) -> Ok:
    if room not in session.rooms:
        raise ServiceError("not_in_room", f"not in room {room!r}")
    session.room_forget(room)
    context = process_context()
    await membership_end(context.live_state, info=session.info, room=room, reason="leave")
    await context.history_outbox.flush()
    return Ok(re=request_id)


async def session_close(*, session: Session) -> None:
    """The connection closed: its rooms see it drop."""
    session.rooms.clear()
    await session_drop(sid=session.sid)
    await process_context().history_outbox.flush()


async def session_state_lost(*, session: Session) -> None:
    """The live state this session lived in was lost: close its history rows.

    The state has nothing left to remove (should it still hold the session,
    the memberships are dropped the ordinary way). A room row nobody is in
    any more is finalized; one that others still hold open waits for them.
    """
    memberships = dict(session.rooms)
    session.rooms.clear()
    for room, membership in memberships.items():
        await events.room_group_discard(room, session.info.channel)
        await db_call(history.participant_record_leave)(
            live_id=membership.room_id, login=session.username, session=session.sid,
            reason=Participant.LeaveReason.DISCONNECT, room_idle=False,
        )
        await db_call(history.room_finalize_if_deserted)(live_id=membership.room_id)
    try:
        await session_drop(sid=session.sid)
    except Exception:
        logger.exception("dropping session %s after the live state was lost failed", session.sid)


# --- Chat ---------------------------------------------------------------------


async def chat_message_send(
    *, session: Session, room: str, text: str, to: list[str] | None, request_id: str | None
) -> Ok:
    if room not in session.rooms:
        raise ServiceError("not_in_room", f"not in room {room!r}")
    permissions.chat_check(session)
    if not session.chat_bucket.take():
        metrics.RATE_LIMIT_REFUSALS.labels("chat_per_connection").inc()
        raise ServiceError(
            "rate_limited", f"at most {settings.CHAT_RATE_PER_SECOND:g} messages per second; this one was not sent"
        )
    if to is None:
        return await _chat_public_send(session=session, room=room, text=text, request_id=request_id)
    context = process_context()
    # One identity's connections share one more bucket: more sockets are not more messages.
    if not await context.rate_limits.take(
        f"chat:identity:{session.username}",
        rate=settings.CHAT_IDENTITY_RATE_PER_SECOND, burst=settings.CHAT_IDENTITY_RATE_BURST,
    ):
        raise _chat_identity_rate_limited(session)
    state = context.live_state
    recipients: list[str] | None = None
    members: dict[str, str] = {}
    if to is not None:
        members = await state.room_members(room)
        recipients = list(dict.fromkeys(name for name in to if name in members))
        if not recipients:
            raise ServiceError("unknown_participant", "none of the recipients is in the room")
    message = ChatMessage(id=uuid.uuid4().hex, sender=session.username, to=recipients, text=text, ts=now_ms())
    # Counted and kept in the live history in one step, so a join sees it
    # either in its room.state history or as an event, never both or neither.
    seq = await state.room_chat_post(
        name=room,
        message_json=None if recipients is not None else message.model_dump_json(),
        history_length=settings.CHAT_HISTORY_LENGTH,
    )
    record = ChatRecord(
        live_id=session.rooms[room].room_id,
        public_id=message.id,
        seq=seq,
        sender=session.username,
        recipients=recipients,
        text=text,
        sent_at_ms=message.ts,
    )
    await context.history_outbox.write("chat_message", **chat_entry(record))
    event = RoomMessageEvent(room=room, message=message)
    if recipients is None:
        await events.room_event_send(room, event, seq=seq)
    else:
        channels = []
        for sid in {members[name] for name in recipients} | {session.sid}:
            info = await state.session_get(sid)
            if info is not None:
                channels.append(info.channel)
        await events.channels_event_send(channels, event, seq=seq)
    await context.history_outbox.flush()
    return Ok(re=request_id, message=message.id)


def _chat_identity_rate_limited(session: Session) -> ServiceError:
    metrics.RATE_LIMIT_REFUSALS.labels("chat_per_identity").inc()
    return ServiceError(
        "rate_limited",
        f"at most {settings.CHAT_IDENTITY_RATE_PER_SECOND:g} messages per second from {session.username!r} "
        "across its connections (CHAT_IDENTITY_RATE_PER_SECOND); this one was not sent",
    )


async def _chat_public_send(*, session: Session, room: str, text: str, request_id: str | None) -> Ok:
    """A public message: the epoch check, the identity's bucket, the room's
    count and history and the archive entry in one step of the live state
    (``rooms.live.chat_send``), then the event to the room."""
    context = process_context()
    message = ChatMessage(id=uuid.uuid4().hex, sender=session.username, to=None, text=text, ts=now_ms())
    arguments = chat_entry(ChatRecord(
        live_id=session.rooms[room].room_id, public_id=message.id, seq=0, sender=session.username,
        recipients=None, text=text, sent_at_ms=message.ts,
    ))
    del arguments["seq"]  # the live state's count, added by chat_send
    event = RoomMessageEvent(room=room, message=message)
    publication = events.room_event_publication(room, event)
    sent = await context.chat_send.send(ChatSend(
        room=room, epoch=session.epoch, bucket=f"chat:identity:{session.username}",
        rate=settings.CHAT_IDENTITY_RATE_PER_SECOND, burst=settings.CHAT_IDENTITY_RATE_BURST,
        message_json=message.model_dump_json(), history_length=settings.CHAT_HISTORY_LENGTH,
        entry=entry_text("chat_message", **arguments),
        publish_channel=publication.channel if publication else "",
        publish_head=publication.head if publication else b"",
    ))
    if sent.outcome is Outcome.EPOCH_CHANGED:
        # The consumer skipped its epoch check for this request: the lost
        # state's sessions, this one among them, end now (state_lost).
        await live_epoch.epoch_current()
        raise ServiceError("unavailable", "the server's live state was lost; connect again")
    if sent.outcome is Outcome.RATE_LIMITED:
        raise _chat_identity_rate_limited(session)
    context.history_outbox.kick()
    if not sent.published:
        await events.room_event_send(room, event, seq=sent.seq)
    await context.history_outbox.flush()
    return Ok(re=request_id, message=message.id)


# --- Finalization ---------------------------------------------------------------


async def _room_finalize_claimed(state: LiveState, claimed: ClaimedRoom) -> None:
    # Queued behind the room's other writes; the next life of the room may
    # open at once, whether or not the database has taken this yet.
    await process_context().history_outbox.write(
        "room_finalize", live_id=claimed.room_id, name=claimed.name, record=claimed.record, at_ms=now_ms()
    )
    await state.room_forget(name=claimed.name, room_id=claimed.room_id)
    await streams.room_media_release(claimed.name)


async def rooms_sweep(*, limit: int = 100, judge_processes: bool = True) -> int:
    """Drop the sessions of dead processes and finalize rooms whose time is up.

    Every web process runs this periodically, and so does Celery beat; any
    number may run at once. Returns how many rooms it finalized.
    ``judge_processes=False`` leaves other processes' heartbeats unjudged
    (a caller that may have been cut off from them itself).
    """
    context = process_context()
    state = context.live_state
    # Writes left by a failed database, or by a process killed before it
    # applied them.
    await context.history_outbox.flush()
    current = now_ms()
    dead = (
        await state.processes_claim_dead(dead_before_ms=current - settings.PRESENCE_TTL_MS, now_ms=current, limit=limit)
        if judge_processes else []
    )
    for process in dead:
        logger.info("process %s stopped heartbeating; dropping its sessions", process)
        for sid in await state.process_sessions(process):
            await session_drop(sid=sid)
        await state.process_forget(process)
    await streams.nodes_sweep()
    claimed_rooms = await state.rooms_claim_due(now_ms=now_ms(), lease_ms=FINALIZE_LEASE_MS, limit=limit)
    for claimed in claimed_rooms:
        await _room_finalize_claimed(state, claimed)
    return len(claimed_rooms)


async def room_finalize_now(
    *, name: str, live_id: str, reason: Literal["operator", "ended"] = "operator", by: str | MISSING = MISSING
) -> bool:
    """End a room now, telling everyone in it (an operator in the admin, or a
    moderator: reason ``ended`` with ``by``).

    Each member gets ``room.finalized`` and is removed as if it had left, so
    the last removal finalizes the room the ordinary way. A room with nobody
    in it is finalized directly.
    """
    state = process_context().live_state
    members = await state.room_members(name)
    recorded_by = await state.room_recorded_by(name)
    if recorded_by and members:
        # The recording ends with the room: said before the end, so a page
        # drops its recording indicator whatever it does with the end.
        stopped = RoomRecording(room=name, recording=False, by=recorded_by)
        await events.room_passing_event_send(name, stopped)
    finalized_event = RoomFinalized(room=name, reason=reason, by=by)
    for sid in members.values():
        info = await state.session_get(sid)
        if info is None:
            continue
        await events.channels_event_send([info.channel], finalized_event, seq=0)
        await membership_end(state, info=info, room=name, reason="leave")
    if members:
        # The caller (an operator, a moderator, the server API) reads the
        # room as ended, unless the database is away.
        await process_context().history_outbox.flush()
        return True
    finalized: bool = await db_call(history.room_finalize)(live_id=live_id, name=name, record=False)
    return finalized
