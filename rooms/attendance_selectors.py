"""Attendance read from the history rows: per room, or over a date range.

The merging rules are ``rooms.attendance``'s; here sessions come from
``Participant`` rows and what each published from its ``Stream`` rows
(the stream's kind, and ``audio`` when its codecs include an audio one).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from rooms.attendance import Attendance, Session, attendance_merge
from rooms.models import Participant, Room, Stream

# Stream.codec joins the codec names the node negotiated, one per track: "VP8+opus".
AUDIO_CODECS = frozenset({"opus", "pcmu", "pcma", "g722"})


@dataclass(frozen=True)
class RoomAttendance:
    room: Room
    rows: list[Attendance]


def stream_published_kinds(kind: str, codec: str) -> set[str]:
    """What a stream sent: its kind when it had video (or its codecs are not known), ``audio`` when it had audio."""
    codecs = {name.lower() for name in codec.split("+") if name}
    kinds = {"audio"} if codecs & AUDIO_CODECS else set()
    if codecs - AUDIO_CODECS or not codecs:
        kinds.add(kind)
    return kinds


def _session_end(participant: Participant, now: datetime.datetime) -> datetime.datetime:
    # One still in when the room ended was there until its end; one in an open room, until now.
    return participant.left_at or participant.room.finalized_at or now


def rooms_attendance(
    rooms: list[Room], *, start: datetime.datetime | None = None, end: datetime.datetime | None = None
) -> list[RoomAttendance]:
    """Attendance of each of ``rooms`` (in their order), inside ``start``..``end`` when given."""
    participants = Participant.objects.filter(room__in=rooms).select_related("room")
    if end is not None:
        participants = participants.filter(joined_at__lt=end)
    if start is not None:
        participants = participants.filter(Q(left_at__isnull=True) | Q(left_at__gt=start))
    # What was published inside the window: streams that were on during it.
    streams = Stream.objects.filter(participant__in=participants)
    if end is not None:
        streams = streams.filter(started_at__lt=end)
    if start is not None:
        streams = streams.filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
    published: dict[int, set[str]] = defaultdict(set)
    for participant_id, kind, codec in streams.values_list("participant_id", "kind", "codec"):
        published[participant_id] |= stream_published_kinds(kind, codec)
    now = timezone.now()
    sessions: dict[int, list[Session]] = defaultdict(list)
    for participant in participants:
        sessions[participant.room_id].append(Session(
            identity=participant.login, joined_at=participant.joined_at, left_at=_session_end(participant, now),
            published=frozenset(published[participant.pk]),
        ))
    return [
        RoomAttendance(room, attendance_merge(sessions[room.pk], window_start=start, window_end=end))
        for room in rooms
    ]


def attendance_between(start: datetime.datetime, end: datetime.datetime) -> list[RoomAttendance]:
    """Every room someone was in between ``start`` and ``end``, oldest first, with its attendance there."""
    rooms = list(
        Room.objects.filter(participants__joined_at__lt=end)
        .filter(Q(participants__left_at__isnull=True) | Q(participants__left_at__gt=start))
        .distinct().order_by("created_at", "pk")
    )
    return [item for item in rooms_attendance(rooms, start=start, end=end) if item.rows]
