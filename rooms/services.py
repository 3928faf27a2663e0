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
from typing import Any

from django.conf import settings

from recording.links import room_records_url
from rooms import events, history, protocol, streams
from rooms.chat_archive import ChatRecord, get_chat_archive
from rooms.database import db_call
from rooms.models import Participant
from rooms.session import Membership, ServiceError, Session
from rooms.state import ClaimedRoom, LiveState, SessionInfo, get_live_state
from rooms.timing import now_ms

logger = logging.getLogger(__name__)

# How long a finalizer may hold a room before a sweep takes it over, and how
# long a join waits for a room being finalized before it gives up.
FINALIZE_LEASE_MS = 10_000
JOIN_WAIT_SECONDS = 15.0


def ice_servers() -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = settings.ICE_SERVERS
    return servers


# --- Sessions -----------------------------------------------------------------


async def session_connect(
    *, channel: str, process: str, username: str, resume: str | None
) -> tuple[Session | None, str | None]:
    """Open a session for ``username``; (session, None) or (None, reason)."""
    login = protocol.username_normalized(username)
    if login is None:
        return None, "invalid_username"
    state = get_live_state()
    if resume:
        previous = await state.session_get(resume)
        if previous is not None:
            await session_drop(sid=previous.sid, reason="resumed")
    info = SessionInfo(sid=secrets.token_urlsafe(24), username=login, channel=channel, process=process)
    await state.session_open(info)
    return Session(info=info), None


async def session_drop(*, sid: str, reason: str = "disconnect") -> None:
    """End a session whose connection is gone, or is being replaced.

    Safe to call from any process, any number of times: each room membership
    is removed by exactly one caller, and only that caller tells the room.
    """
    state = get_live_state()
    info = await state.session_get(sid)
    if info is None:
        return
    if reason != "disconnect":
        await events.session_end_send(info.channel, reason)
    for room in await state.session_rooms(sid):
        await _membership_end(state, info=info, room=room, reason="disconnect")
    await state.session_close(info)


async def _membership_end(state: LiveState, *, info: SessionInfo, room: str, reason: str) -> None:
    explicit = reason == "leave"
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
    await streams.streams_end_for(room=room, participant=info.username, channel=info.channel)
    await events.room_group_discard(room, info.channel)
    await db_call(history.participant_record_leave)(
        live_id=result.room_id,
        login=info.username,
        session=info.sid,
        reason=Participant.LeaveReason.LEAVE if explicit else Participant.LeaveReason.DISCONNECT,
        room_idle=result.outcome == "idle",
    )
    if result.outcome == "left":
        await events.room_event_send(
            room,
            {"type": "room.left", "room": room, "participant": {"name": info.username}, "reason": reason},
            seq=result.seq,
        )
    elif result.outcome == "finalize":
        await _room_finalize_claimed(state, ClaimedRoom(room, result.room_id, result.record, was_idle=False))


# --- Rooms --------------------------------------------------------------------


async def room_join(*, session: Session, room: str, record: bool, request_id: str | None) -> dict[str, Any]:
    if not protocol.room_name_valid(room):
        return protocol.room_failed_reply(
            request_id, room, "invalid_room", "room names are 1-128 of A-Z a-z 0-9 - _ . not starting with '.'"
        )
    state = get_live_state()
    # Join the group first: events sent while the state is read are queued
    # behind the room.state reply, so the client misses nothing.
    await events.room_group_add(room, session.info.channel)
    deadline = time.monotonic() + JOIN_WAIT_SECONDS
    pause = 0.005
    while True:
        result = await state.room_join(
            name=room,
            login=session.username,
            sid=session.sid,
            new_room_id=uuid.uuid4().hex,
            record=record,
            max_participants=settings.ROOM_MAX_PARTICIPANTS,
            now_ms=now_ms(),
        )
        if result.outcome != "busy":
            break
        # The room's previous life is being finalized; the join opens the
        # next one as soon as that is written.
        if time.monotonic() > deadline:
            await _group_discard_unless_member(session, room)
            return protocol.room_failed_reply(request_id, room, "try_again", "the room is closing; join again")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)

    if result.outcome in ("login_taken", "full"):
        await _group_discard_unless_member(session, room)
        if result.outcome == "login_taken":
            return protocol.room_failed_reply(
                request_id, room, "login_taken", f"{session.username!r} is already in the room"
            )
        return protocol.room_failed_reply(
            request_id, room, "room_full", f"the room has {settings.ROOM_MAX_PARTICIPANTS} participants"
        )
    if result.outcome == "joined":
        session.rooms[room] = Membership(result.room_id, result.seq, record=result.record)
        await db_call(history.participant_record_join)(
            live_id=result.room_id,
            room_name=room,
            record=result.record,
            created=result.created,
            reactivated=result.reactivated,
            login=session.username,
            session=session.sid,
        )
        await events.room_event_send(
            room,
            {"type": "room.joined", "room": room, "participant": protocol.participant_payload(session.username)},
            seq=result.seq,
            exclude_channel=session.info.channel,
        )
    published = await streams.room_participant_streams(room)
    participants = [
        protocol.participant_payload(name, published.get(name)) for name in sorted(result.members)
        if name != session.username
    ]
    return {
        "type": "room.state",
        "re": request_id,
        "room": room,
        "record": result.record,
        # The browser SDK puts this codec first in its offers (setCodecPreferences).
        "video_codec": settings.ROOM_VIDEO_CODEC,
        # The room's records page, signed for this room; pages show it when the room ends.
        "records_url": room_records_url(result.room_id),
        "participants": participants,
        "history": [json.loads(message) for message in result.history],
    }


async def _group_discard_unless_member(session: Session, room: str) -> None:
    if room not in session.rooms:
        await events.room_group_discard(room, session.info.channel)


async def room_leave(*, session: Session, room: str, request_id: str | None) -> dict[str, Any]:
    if room not in session.rooms:
        raise ServiceError("not_in_room", f"not in room {room!r}")
    del session.rooms[room]
    await _membership_end(get_live_state(), info=session.info, room=room, reason="leave")
    return protocol.ok_reply(request_id)


async def session_close(*, session: Session) -> None:
    """The connection closed: its rooms see it drop."""
    session.rooms.clear()
    await session_drop(sid=session.sid)


# --- Chat ---------------------------------------------------------------------


async def chat_message_send(
    *, session: Session, room: str, text: str, to: list[str] | None, request_id: str | None
) -> dict[str, Any]:
    if room not in session.rooms:
        raise ServiceError("not_in_room", f"not in room {room!r}")
    if not session.chat_bucket.take():
        raise ServiceError(
            "rate_limited", f"at most {settings.CHAT_RATE_PER_SECOND:g} messages per second; this one was not sent"
        )
    state = get_live_state()
    recipients: list[str] | None = None
    members: dict[str, str] = {}
    if to is not None:
        members = await state.room_members(room)
        recipients = list(dict.fromkeys(name for name in to if name in members))
        if not recipients:
            raise ServiceError("unknown_participant", "none of the recipients is in the room")
    message_id, sent_at_ms = uuid.uuid4().hex, now_ms()
    message = {"id": message_id, "from": session.username, "to": recipients, "text": text, "ts": sent_at_ms}
    # Counted and kept in the live history in one step, so a join sees it
    # either in its room.state history or as an event, never both or neither.
    seq = await state.room_chat_post(
        name=room,
        message_json=None if recipients is not None else json.dumps(message, ensure_ascii=False),
        history_length=settings.CHAT_HISTORY_LENGTH,
    )
    await get_chat_archive().store(
        ChatRecord(
            live_id=session.rooms[room].room_id,
            public_id=message_id,
            seq=seq,
            sender=session.username,
            recipients=recipients,
            text=text,
            sent_at_ms=sent_at_ms,
        )
    )
    event = {"type": "room.message", "room": room, "message": message}
    if recipients is None:
        await events.room_event_send(room, event, seq=seq)
    else:
        for sid in {members[name] for name in recipients} | {session.sid}:
            info = await state.session_get(sid)
            if info is not None:
                await events.channel_event_send(info.channel, event, seq=seq)
    return protocol.ok_reply(request_id, message=message_id)


# --- Finalization ---------------------------------------------------------------


async def _room_finalize_claimed(state: LiveState, claimed: ClaimedRoom) -> None:
    await db_call(history.room_finalize)(
        live_id=claimed.room_id, name=claimed.name, record=claimed.record
    )
    await state.room_forget(name=claimed.name, room_id=claimed.room_id)
    await streams.room_media_release(claimed.name)


async def rooms_sweep(*, limit: int = 100) -> int:
    """Drop the sessions of dead processes and finalize rooms whose time is up.

    Every web process runs this periodically, and so does Celery beat; any
    number may run at once. Returns how many rooms it finalized.
    """
    state = get_live_state()
    current = now_ms()
    for process in await state.processes_claim_dead(
        dead_before_ms=current - settings.PRESENCE_TTL_MS, now_ms=current, limit=limit
    ):
        logger.info("process %s stopped heartbeating; dropping its sessions", process)
        for sid in await state.process_sessions(process):
            await session_drop(sid=sid)
        await state.process_forget(process)
    await streams.nodes_sweep()
    claimed_rooms = await state.rooms_claim_due(now_ms=now_ms(), lease_ms=FINALIZE_LEASE_MS, limit=limit)
    for claimed in claimed_rooms:
        await _room_finalize_claimed(state, claimed)
    return len(claimed_rooms)


async def room_finalize_now(*, name: str, live_id: str) -> bool:
    """Operator action: end a room now, telling everyone in it.

    Each member gets ``room.finalized`` and is removed as if it had left, so
    the last removal finalizes the room the ordinary way. A room with nobody
    in it is finalized directly.
    """
    state = get_live_state()
    members = await state.room_members(name)
    for sid in members.values():
        info = await state.session_get(sid)
        if info is None:
            continue
        await events.channel_event_send(
            info.channel, {"type": "room.finalized", "room": name, "reason": "operator"}, seq=0
        )
        await _membership_end(state, info=info, room=name, reason="leave")
    if members:
        return True
    finalized: bool = await db_call(history.room_finalize)(live_id=live_id, name=name, record=False)
    return finalized
