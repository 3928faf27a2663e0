"""Moderation: remove a participant, mute a stream, lock or end a room; and
what a moderator (or the server API) may read about live rooms.

Every action here may run in any process: it works on the shared live state
and reaches connections through the channel layer. Who may call it is
decided before (``rooms.permissions`` for sessions, the server API's own
authentication); each action is written to the audit trail with ``by``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from audit.services import audit_record
from rooms import events, services, streams
from rooms.database import db_call
from rooms.live.context import process_context
from rooms.models import Room
from rooms.server_messages import ParticipantRef, RoomLeft, RoomLocked, Stream


@dataclass(frozen=True)
class RoomSummary:
    name: str
    live_id: str
    status: str
    record: bool
    locked: bool
    participants: int
    created_at: datetime


@dataclass(frozen=True)
class ParticipantSummary:
    identity: str
    display_name: str = ""
    metadata: str = ""
    hidden: bool = False
    streams: list[Stream] = field(default_factory=list)


async def _audit(*, by: str, action: str, room: str, target: str = "", address: str = "", **detail: Any) -> None:
    await db_call(audit_record)(actor=by, action=action, room=room, target=target, address=address, detail=detail)


async def participant_kick(*, room: str, login: str, by: str, address: str = "") -> bool:
    """Remove ``login`` from ``room``: it is told ``room.left`` reason
    ``kicked``, and so is everyone else. False if it is not in the room."""
    state = process_context().live_state
    sid = (await state.room_members(room)).get(login)
    info = await state.session_get(sid) if sid is not None else None
    if info is None:
        return False
    kicked = RoomLeft(room=room, participant=ParticipantRef(name=login), reason="kicked", by=by)
    # Told before it is removed: its connection forgets the membership and
    # leaves the room's group on this event, sent to it alone.
    await events.channels_event_send([info.channel], kicked, seq=0)
    await services.membership_end(state, info=info, room=room, reason="kicked", by=by)
    await process_context().history_outbox.flush()
    await _audit(by=by, action="room.kick", room=room, target=login, address=address)
    return True


async def stream_mute_by(
    *, room: str, stream: str, audio: bool | None, video: bool | None, by: str, address: str = ""
) -> bool:
    """Mute or unmute another participant's stream: its node stops
    forwarding the muted tracks. False if there is no such stream in ``room``."""
    record = await process_context().stream_registry.stream_get(stream)
    if record is None or record.room != room:
        return False
    await streams.stream_mute_apply(record, audio=audio, video=video, by=by)
    await _audit(
        by=by, action="stream.mute", room=room, target=f"{record.participant}/{stream}", address=address,
        audio=audio, video=video,
    )
    return True


async def room_lock_set(*, room: str, locked: bool, by: str, address: str = "") -> bool:
    """Lock (no more joins) or unlock a room. False if the room is not live."""
    seq = await process_context().live_state.room_lock(name=room, locked=locked)
    if seq is None:
        return False
    await events.room_event_send(room, RoomLocked(room=room, locked=locked, by=by), seq=seq)
    await _audit(by=by, action="room.lock" if locked else "room.unlock", room=room, address=address)
    return True


def _open_room(name: str) -> Room | None:
    return Room.objects.exclude(status=Room.Status.FINALIZED).filter(name=name).first()


async def room_end(*, room: str, by: str, address: str = "") -> bool:
    """End the meeting for everyone: ``room.finalized`` reason ``ended``."""
    row = await db_call(_open_room)(room)
    if row is None:
        return False
    ended = await services.room_finalize_now(name=room, live_id=row.live_id, reason="ended", by=by)
    await _audit(by=by, action="room.end", room=room, address=address)
    return ended


def _open_rooms() -> list[Room]:
    return list(Room.objects.exclude(status=Room.Status.FINALIZED).order_by("name"))


async def rooms_live() -> list[RoomSummary]:
    state = process_context().live_state
    summaries = []
    for row in await db_call(_open_rooms)():
        # The history may hold open rows the live state no longer knows (a
        # live state lost, or another deployment on the same database).
        if await state.room_status(row.name) is None:
            continue
        participants = await room_participants_live(row.name)
        summaries.append(
            RoomSummary(
                name=row.name,
                live_id=row.live_id,
                status=row.status,
                record=row.record,
                locked=await state.room_locked(row.name),
                participants=sum(1 for participant in participants if not participant.hidden),
                created_at=row.created_at,
            )
        )
    return summaries


async def room_participants_live(room: str) -> list[ParticipantSummary]:
    """Everyone in the room now, hidden participants included (marked)."""
    state = process_context().live_state
    members = await state.room_members(room)
    profiles = await state.room_profiles(room)
    published = await streams.room_participant_streams(room)
    summaries = []
    for name in sorted(members):
        profile = json.loads(profiles[name]) if profiles.get(name) else {}
        summaries.append(
            ParticipantSummary(
                identity=name,
                display_name=profile.get("display_name", ""),
                metadata=profile.get("metadata", ""),
                hidden=bool(profile.get("hidden")),
                streams=published.get(name, []),
            )
        )
    return summaries
