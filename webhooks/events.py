"""What each event says: the Standard Webhooks payload built from the rows of rooms and recording.

Every payload is ``{"type": ..., "timestamp": ..., "data": {...}}``: the
event's name, when it happened (ISO 8601, UTC), and what it is about. Every
``data`` names the room (``room``, its name, and ``room_id``, the live id
that tells one life of a name from the next).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from django.utils import timezone

from recording.models import Recording
from rooms.models import Participant, Room, Stream

EVENT_TYPES = (
    "room_started",
    "participant_joined",
    "participant_left",
    "stream_published",
    "stream_unpublished",
    "room_finished",
    "recording_ready",
    "recording_failed",
)


@dataclass(frozen=True)
class WebhookEvent:
    type: str
    room: Room
    occurred_at: datetime.datetime
    data: dict[str, Any]

    def payload(self) -> str:
        """The body sent for this event (UTF-8 JSON, the same bytes on every attempt)."""
        body = {"type": self.type, "timestamp": timestamp_format(self.occurred_at), "data": self.data}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def timestamp_format(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _room_fields(room: Room) -> dict[str, Any]:
    return {"room": room.name, "room_id": room.live_id}


def _participant_fields(participant: Participant) -> dict[str, Any]:
    return {"identity": participant.login, "session": participant.session}


def _stream_fields(stream: Stream) -> dict[str, Any]:
    return {"id": stream.live_id, "kind": stream.kind, "record": stream.record, "codec": stream.codec}


def room_started(room: Room) -> WebhookEvent:
    return WebhookEvent("room_started", room, room.created_at, {**_room_fields(room), "record": room.record})


def participant_joined(participant: Participant) -> WebhookEvent:
    room = participant.room
    data = {**_room_fields(room), "participant": _participant_fields(participant)}
    return WebhookEvent("participant_joined", room, participant.joined_at, data)


def participant_left(participant: Participant) -> WebhookEvent:
    room = participant.room
    data = {**_room_fields(room), "participant": _participant_fields(participant), "reason": participant.leave_reason}
    return WebhookEvent("participant_left", room, participant.left_at or timezone.now(), data)


def stream_published(stream: Stream) -> WebhookEvent:
    participant = stream.participant
    room = participant.room
    data = {**_room_fields(room), "participant": _participant_fields(participant), "stream": _stream_fields(stream)}
    return WebhookEvent("stream_published", room, stream.started_at, data)


def stream_unpublished(stream: Stream) -> WebhookEvent:
    participant = stream.participant
    room = participant.room
    data = {**_room_fields(room), "participant": _participant_fields(participant), "stream": _stream_fields(stream)}
    return WebhookEvent("stream_unpublished", room, stream.ended_at or timezone.now(), data)


def room_finished(room: Room) -> WebhookEvent:
    finished_at = room.finalized_at or timezone.now()
    data = {**_room_fields(room), "started_at": timestamp_format(room.created_at)}
    return WebhookEvent("room_finished", room, finished_at, data)


def _recording_fields(recording: Recording) -> dict[str, Any]:
    return {
        "id": recording.pk,
        "kind": recording.kind,
        "status": recording.status,
        "participant": recording.participant or None,
        "stream_id": recording.stream_live_id or None,
    }


def recording_ready(recording: Recording) -> WebhookEvent:
    fields = {
        **_recording_fields(recording),
        # The download on this server; it answers to whoever may see the
        # room's records (an operator's session, a records link).
        "file_url": reverse("recording:download", args=[recording.pk]) if recording.file_path else None,
        "size_bytes": recording.size_bytes,
        "duration_ms": recording.duration_ms,
    }
    data = {**_room_fields(recording.room), "recording": fields}
    return WebhookEvent("recording_ready", recording.room, recording.ended_at or timezone.now(), data)


def recording_failed(recording: Recording) -> WebhookEvent:
    fields = {**_recording_fields(recording), "reason": recording.failure_reason}
    data = {**_room_fields(recording.room), "recording": fields}
    return WebhookEvent("recording_failed", recording.room, timezone.now(), data)
