"""What a room's archive page plays, and where each recording's time 0 is.

A room (one life of a name) has at most one mix and any number of stream
records. The page plays the mix when it is ready: it is the whole room,
with the chat as subtitles. Without one (the room was not recorded as a
whole, or its mix is still being made or failed) it plays the stream
records, the longest first, and offers the others.

Everything on the page runs on one clock, the room's: 0 is where the
room's first recorded media starts, the mix's time 0 (the mixer's own
rule, ``recording.mixing.mix_records_read``). Each recording sits on it at
an offset, the server time of its file's time 0 less that of the room's;
a stream record's comes from its sidecar, the mix's from its row (or,
for a mix made before the row kept it, from the stream records' sidecars).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from recording.downloads import downloadable_file
from recording.models import Recording
from recording.services import PLAYABLE_STATUSES, recording_file_path, room_stream_records
from recording.sidecar import Sidecar, SidecarError, sidecar_read
from rooms.models import Room

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchiveMedia:
    recording: Recording
    path: Path
    file_started_at_ms: float  # server clock of the file's time 0

    @property
    def is_mix(self) -> bool:
        return self.recording.kind == Recording.Kind.ROOM


@dataclass(frozen=True)
class ArchiveChoice:
    # What the page may play, the one it starts with first.
    media: list[ArchiveMedia]
    # The room's clock: server time (epoch ms) of its 0; None when nothing was recorded.
    origin_ms: float | None
    # The room's mix whatever its state, to say why it is not played.
    mix: Recording | None

    def offset_s(self, media: ArchiveMedia) -> float:
        """Where ``media``'s time 0 sits on the room's clock."""
        assert self.origin_ms is not None
        return (media.file_started_at_ms - self.origin_ms) / 1000


def _stream_sidecar(recording: Recording) -> Sidecar | None:
    path = recording_file_path(recording.sidecar_path)
    if path is None:
        return None
    try:
        return sidecar_read(path)
    except (OSError, SidecarError) as error:
        logger.warning("record %s has no usable sidecar: %s", recording.pk, error)
        return None


def sidecar_media_start_ms(sidecar: Sidecar) -> float:
    """Server time at which the record's real media starts (after any padding)."""
    return sidecar.started_at_ms + sidecar.padded_ms


def recording_file_start_ms(recording: Recording) -> float | None:
    """Server time (epoch ms) of the recording file's time 0, None when it is not known."""
    if recording.kind == Recording.Kind.STREAM:
        sidecar = _stream_sidecar(recording)
        return sidecar.started_at_ms if sidecar is not None else None
    if recording.media_started_at_ms is not None:
        return recording.media_started_at_ms
    sidecars = [sidecar for record in room_stream_records(recording.room) if (sidecar := _stream_sidecar(record))]
    return min((sidecar_media_start_ms(sidecar) for sidecar in sidecars), default=None)


def room_archive_choice(room: Room) -> ArchiveChoice:
    mix = Recording.objects.filter(room=room, kind=Recording.Kind.ROOM).first()
    streams: list[tuple[ArchiveMedia, float]] = []
    for record in room_stream_records(room):
        path = downloadable_file(record, record.file_path)
        sidecar = _stream_sidecar(record) if path is not None else None
        if path is not None and sidecar is not None:
            streams.append((ArchiveMedia(record, path, sidecar.started_at_ms), sidecar_media_start_ms(sidecar)))
    # The longest first: it covers most of the meeting.
    streams.sort(key=lambda item: (-(item[0].recording.duration_ms or 0), item[0].recording.started_at))
    media = [item[0] for item in streams]
    origin_ms = min((start for _, start in streams), default=None)
    mix_path = downloadable_file(mix, mix.file_path) if mix is not None else None
    if mix is not None and mix.status in PLAYABLE_STATUSES and mix_path is not None:
        mix_start = recording_file_start_ms(mix)
        if mix_start is not None:
            media.insert(0, ArchiveMedia(mix, mix_path, mix_start))
            origin_ms = mix_start
    return ArchiveChoice(media=media, origin_ms=origin_ms, mix=mix)


def room_clock_origin_ms(room: Room, choice: ArchiveChoice | None = None) -> float:
    """Server time (epoch ms) of 0 on the room's clock: its recording's, else the room's creation."""
    origin_ms = (choice or room_archive_choice(room)).origin_ms
    return origin_ms if origin_ms is not None else room.created_at.timestamp() * 1000
