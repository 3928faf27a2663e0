"""A finalized room's history and records as rows and files, for the archive's tests.

Times are given in ms from ``T0`` on the server clock. Media files are
placeholders: the archive serves them, it does not read them.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

from recording.models import Recording
from recording.sidecar import Sidecar, sidecar_write
from rooms.models import ChatMessage, Participant, Room, Stream, StreamMute

# An hour ago, to the second: links to the room's records are still valid.
T0 = (int(time.time()) - 3600) * 1000


def moment(at_ms: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp((T0 + at_ms) / 1000, tz=datetime.UTC)


def archived_room(name: str = "weekly", *, record: bool = True) -> Room:
    """A finalized room; one that was ``record``ed as a whole has its mix's row (RECORDING) from the start."""
    room = Room.objects.create(name=name, live_id=f"live-{name}", record=record)
    Room.objects.filter(pk=room.pk).update(
        status=Room.Status.FINALIZED, created_at=moment(-1000), finalized_at=moment(60_000)
    )
    room.refresh_from_db()
    return room


def joined(room: Room, login: str, at_ms: float, left_ms: float | None = None, reason: str = "leave") -> Participant:
    return Participant.objects.create(
        room=room, login=login, session=f"s-{login}-{at_ms}", joined_at=moment(at_ms),
        left_at=moment(left_ms) if left_ms is not None else None, leave_reason=reason if left_ms is not None else "",
    )


def published(
    participant: Participant, at_ms: float, ended_ms: float | None = None, kind: str = Stream.Kind.CAMERA
) -> Stream:
    return Stream.objects.create(
        participant=participant, live_id=f"stream-{participant.login}-{kind}-{at_ms}", kind=kind,
        started_at=moment(at_ms), ended_at=moment(ended_ms) if ended_ms is not None else None,
    )


def muted(stream: Stream, at_ms: float, *, audio: bool, video: bool, by: str = "") -> StreamMute:
    return StreamMute.objects.create(
        stream=stream, mute_id=f"mute-{stream.pk}-{at_ms}", audio=audio, video=video, by=by, at=moment(at_ms)
    )


def said(room: Room, sender: str, text: str, at_ms: float, to: list[str] | None = None) -> ChatMessage:
    seq = ChatMessage.objects.filter(room=room).count() + 1
    return ChatMessage.objects.create(
        room=room, public_id=f"{room.name}{seq:04d}", seq=seq, sender=sender, recipients=to, text=text,
        sent_at_ms=T0 + round(at_ms),
    )


def stream_record(
    room: Room, root: Path, stream: Stream, *, started_ms: float, duration_ms: int, padded_ms: float = 0
) -> Recording:
    """A READY stream record whose file's time 0 is ``started_ms`` (its media starts ``padded_ms`` later)."""
    folder = root / room.name
    folder.mkdir(parents=True, exist_ok=True)
    media = folder / f"{stream.live_id}.webm"
    media.write_bytes(b"\x1aE\xdf\xa3 webm")
    sidecar = Sidecar(
        room=room.name, room_id=room.live_id, stream=stream.live_id, participant=stream.participant.login,
        kind=stream.kind, file=media.name, started_at_ms=float(T0 + started_ms),
        ended_at_ms=float(T0 + started_ms + duration_ms), padded_ms=float(padded_ms), tracks=[],
    )
    sidecar_path = folder / f"{stream.live_id}.json"
    sidecar_write(sidecar_path, sidecar)
    return Recording.objects.create(
        room=room, kind=Recording.Kind.STREAM, stream=stream, stream_live_id=stream.live_id,
        participant=stream.participant.login, status=Recording.Status.READY,
        file_path=str(media.relative_to(root)), sidecar_path=str(sidecar_path.relative_to(root)),
        duration_ms=duration_ms,
    )


def room_mix(
    room: Room, root: Path, *, started_ms: float | None, duration_ms: int, status: str = Recording.Status.READY
) -> Recording:
    """The room's mix; ``started_ms`` None for a mix made before its row kept its start."""
    folder = root / room.name
    folder.mkdir(parents=True, exist_ok=True)
    media = folder / f"room-{room.live_id}.mp4"
    media.write_bytes(b"\x00\x00\x00\x18ftypisom mix")
    mix, _ = Recording.objects.update_or_create(
        room=room, kind=Recording.Kind.ROOM,
        defaults={
            "status": status, "file_path": str(media.relative_to(root)), "duration_ms": duration_ms,
            "media_started_at_ms": float(T0 + started_ms) if started_ms is not None else None,
        },
    )
    return mix
