"""The sidecar JSON written next to every stream record, and A/V alignment from it.

A record's media file places each track by packet arrival time, which is off
by tens of milliseconds between audio and video. The sidecar keeps what is
needed to do better afterwards: each track's first RTP timestamp, its first
arrival and the RTCP sender reports (NTP ↔ RTP on the sender's clock).

Format version 1 (`<stream id>.json` beside `<stream id>.webm|.mkv|.mp4`):
`version`, `room`, `room_id`, `stream`, `participant`, `kind`, `file`
(relative to the sidecar's folder), `started_at_ms` (server epoch ms of file
time 0), `ended_at_ms` (null if the process died mid-record), `padded_ms`
(black/silence prepended; `started_at_ms` then moved back by as much),
`repaired` (written only as true, once a record whose writer was killed
has been rewritten with a duration and a seek index: recording.repair) and
`tracks`: per track `kind`, `codec`, `clock_rate`, `ssrc`,
`first_rtp_timestamp`, `first_arrival_ms`, `offset_ms` (where its first
packet sits in the file), `sender_reports` (`ntp_ms` as Unix epoch ms on the
sender's clock, `rtp_timestamp`, `arrival_ms`), `packets`, `bytes`.
In the file, a track's packet sits at offset_ms + (RTP ts - first RTP ts) / clock.

Reading is strict: every field has its JSON type (no strings for numbers, no
booleans for integers); `ended_at_ms`, `padded_ms` and `repaired` may be
absent (null, 0 and false), as may a track's `sender_reports` (none). Keys of no meaning here
are ignored, so a reader of this version also reads files that carry more.
"""

from __future__ import annotations

import json
import logging
import os
import reprlib
from collections.abc import Sequence
from dataclasses import field
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

SIDECAR_VERSION: Final = 1
RTP_TIMESTAMP_MODULUS = 1 << 32
MAX_AUDIO_CORRECTION_MS = 1000.0

logger = logging.getLogger(__name__)

TrackKind = Literal["audio", "video"]


class SidecarError(ValueError):
    """A sidecar file that cannot be read as format version 1."""


# Pydantic dataclasses rather than models: the capture updates a track's
# counters for every frame, and a dataclass attribute keeps that a plain store.
# Strictness is per field (StrictInt, ...): a dataclass made strict as a whole
# would take only instances, not the objects a file holds. What a file must
# carry has no default, even where a new record starts empty (tracks,
# packets, bytes); the version is checked before the rest (Sidecar.from_dict).


@dataclass(frozen=True)
class SenderReport:
    """One RTCP sender report: the sender's wall clock for one RTP timestamp."""

    ntp_ms: StrictFloat  # NTP time converted to Unix epoch milliseconds, sender's clock
    rtp_timestamp: StrictInt
    arrival_ms: StrictFloat  # server wall clock when the report arrived


@dataclass(kw_only=True)
class TrackTiming:
    """Timing of one track of a record. Mutable: the capture updates counters and reports."""

    kind: TrackKind
    codec: StrictStr
    clock_rate: Annotated[StrictInt, Field(gt=0)]
    ssrc: StrictInt
    first_rtp_timestamp: StrictInt
    first_arrival_ms: StrictFloat
    offset_ms: StrictFloat  # where the first packet sits in the file (first_arrival_ms - started_at_ms + padded_ms)
    sender_reports: list[SenderReport] = field(default_factory=list)
    packets: StrictInt
    bytes: StrictInt


@dataclass(kw_only=True)
class Sidecar:
    """One stream record's sidecar (`<stream id>.json` next to the media file)."""

    version: Literal[1] = SIDECAR_VERSION
    room: StrictStr
    room_id: StrictStr
    stream: StrictStr
    participant: StrictStr
    kind: StrictStr  # "camera" | "screen"
    file: StrictStr  # media file name, relative to the sidecar's folder
    started_at_ms: StrictFloat  # server wall clock (epoch ms) of file time 0
    ended_at_ms: StrictFloat | None = None  # None while recording, or if the process died mid-record
    padded_ms: StrictFloat = 0
    repaired: StrictBool = False  # rewritten with a duration and a seek index after its writer was killed
    tracks: list[TrackTiming]

    def track(self, kind: TrackKind) -> TrackTiming | None:
        return next((track for track in self.tracks if track.kind == kind), None)

    def media_path(self, sidecar_path: Path) -> Path:
        return sidecar_path.parent / self.file

    def to_json(self) -> str:
        data = _SIDECAR_FORMAT.dump_python(self)
        if not self.repaired:
            del data["repaired"]  # written only when true: a whole record's file reads as before
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: object) -> Sidecar:
        # The version says which format the rest is in: another one is refused before its fields are read.
        if isinstance(data, dict) and data.get("version") != SIDECAR_VERSION:
            raise SidecarError(f"sidecar.version: expected {SIDECAR_VERSION}, got {data.get('version')!r}")
        try:
            return _SIDECAR_FORMAT.validate_python(data)
        except ValidationError as error:
            raise SidecarError(_problems(error)) from error

    @classmethod
    def from_json(cls, text: str | bytes) -> Sidecar:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise SidecarError(f"sidecar: not JSON ({error})") from error
        return cls.from_dict(data)


_SIDECAR_FORMAT = TypeAdapter(Sidecar)


def _problems(error: ValidationError) -> str:
    """Every problem of a sidecar, each where it is: ``sidecar.tracks[0].ssrc: Input should be ...``."""
    problems = []
    for problem in error.errors(include_url=False):
        where = "sidecar" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"])
        got = "" if problem["type"] == "missing" else f", got {reprlib.repr(problem['input'])}"
        problems.append(f"{where}: {problem['msg']}{got}")
    return "; ".join(problems)


def sidecar_read(path: Path) -> Sidecar:
    try:
        return Sidecar.from_json(path.read_bytes())
    except SidecarError as error:
        raise SidecarError(f"{path}: {error}") from error


def sidecar_write(path: Path, sidecar: Sidecar) -> None:
    """Write through a temporary name and rename, so a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(sidecar.to_json(), encoding="utf-8")
    os.replace(temporary, path)


def rtp_timestamp_delta(timestamp: int, reference: int) -> int:
    """`timestamp - reference` for 32-bit RTP timestamps that may have wrapped, in [-2**31, 2**31)."""
    delta = (timestamp - reference) % RTP_TIMESTAMP_MODULUS
    return delta - RTP_TIMESTAMP_MODULUS if delta >= RTP_TIMESTAMP_MODULUS // 2 else delta


def track_sender_start_ms(track: TrackTiming) -> float | None:
    """The sender's wall clock (epoch ms) of the track's first RTP timestamp, or None without reports.

    The earliest report is used: it is closest to the first packet, so the
    least sender clock drift and no risk of unwrapping across a half period.
    """
    if not track.sender_reports:
        return None
    report = min(track.sender_reports, key=lambda sender_report: sender_report.arrival_ms)
    delta = rtp_timestamp_delta(track.first_rtp_timestamp, report.rtp_timestamp)
    return report.ntp_ms + delta * 1000.0 / track.clock_rate


def audio_correction_ms(sidecar: Sidecar) -> float:
    """How much later than its place in the file the audio must be played to match the video.

    The file places both tracks by arrival; the sender reports of the two
    tracks share the sender's clock, so when both have reports the true
    audio-vs-video start difference is known and the file's one is replaced
    by it. Without reports on both tracks, or if the reports claim more than
    MAX_AUDIO_CORRECTION_MS, the file is trusted (0).
    """
    audio, video = sidecar.track("audio"), sidecar.track("video")
    if audio is None or video is None:
        return 0.0
    audio_start, video_start = track_sender_start_ms(audio), track_sender_start_ms(video)
    if audio_start is None or video_start is None:
        return 0.0
    correction = (audio_start - video_start) - (audio.offset_ms - video.offset_ms)
    if abs(correction) > MAX_AUDIO_CORRECTION_MS:
        # Arrival times are off by tens of milliseconds, not seconds: such
        # reports come from a sender clock that jumped, not from the network.
        logger.warning("stream %s: sender reports and arrival differ by %.0f ms; ignored", sidecar.stream, correction)
        return 0.0
    return correction


def sidecars_room_start_ms(sidecars: Sequence[Sidecar]) -> float:
    """Room timeline zero: the earliest record start (all records share the server clock)."""
    return min(sidecar.started_at_ms for sidecar in sidecars)
