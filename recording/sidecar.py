"""The sidecar JSON written next to every stream record, and A/V alignment from it.

A record's media file places each track by packet arrival time, which is off
by tens of milliseconds between audio and video. The sidecar keeps what is
needed to do better afterwards: each track's first RTP timestamp, its first
arrival and the RTCP sender reports (NTP ↔ RTP on the sender's clock).

Format version 1 (`<stream id>.json` beside `<stream id>.webm|.mkv|.mp4`):
`version`, `room`, `room_id`, `stream`, `participant`, `kind`, `file`
(relative to the sidecar's folder), `started_at_ms` (server epoch ms of file
time 0), `ended_at_ms` (null if the process died mid-record), `padded_ms`
(black/silence prepended; `started_at_ms` then moved back by as much) and
`tracks`: per track `kind`, `codec`, `clock_rate`, `ssrc`,
`first_rtp_timestamp`, `first_arrival_ms`, `offset_ms` (where its first
packet sits in the file), `sender_reports` (`ntp_ms` as Unix epoch ms on the
sender's clock, `rtp_timestamp`, `arrival_ms`), `packets`, `bytes`.
In the file, a track's packet sits at offset_ms + (RTP ts - first RTP ts) / clock.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

SIDECAR_VERSION = 1
RTP_TIMESTAMP_MODULUS = 1 << 32
MAX_AUDIO_CORRECTION_MS = 1000.0

logger = logging.getLogger(__name__)

TrackKind = Literal["audio", "video"]


class SidecarError(ValueError):
    """A sidecar file that cannot be read as format version 1."""


@dataclass(frozen=True)
class SenderReport:
    """One RTCP sender report: the sender's wall clock for one RTP timestamp."""

    ntp_ms: float  # NTP time converted to Unix epoch milliseconds, sender's clock
    rtp_timestamp: int
    arrival_ms: float  # server wall clock when the report arrived

    def to_dict(self) -> dict[str, Any]:
        return {"ntp_ms": self.ntp_ms, "rtp_timestamp": self.rtp_timestamp, "arrival_ms": self.arrival_ms}

    @classmethod
    def from_dict(cls, data: object, where: str) -> SenderReport:
        fields = _require_object(data, where)
        return cls(
            ntp_ms=_require_number(fields, "ntp_ms", where),
            rtp_timestamp=_require_int(fields, "rtp_timestamp", where),
            arrival_ms=_require_number(fields, "arrival_ms", where),
        )


@dataclass
class TrackTiming:
    """Timing of one track of a record. Mutable: the capture updates counters and reports."""

    kind: TrackKind
    codec: str
    clock_rate: int
    ssrc: int
    first_rtp_timestamp: int
    first_arrival_ms: float
    offset_ms: float  # where the first packet sits in the file (first_arrival_ms - started_at_ms + padded_ms)
    sender_reports: list[SenderReport] = field(default_factory=list)
    packets: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "codec": self.codec,
            "clock_rate": self.clock_rate,
            "ssrc": self.ssrc,
            "first_rtp_timestamp": self.first_rtp_timestamp,
            "first_arrival_ms": self.first_arrival_ms,
            "offset_ms": self.offset_ms,
            "sender_reports": [report.to_dict() for report in self.sender_reports],
            "packets": self.packets,
            "bytes": self.bytes,
        }

    @classmethod
    def from_dict(cls, data: object, where: str) -> TrackTiming:
        fields = _require_object(data, where)
        kind = _require_str(fields, "kind", where)
        if kind not in ("audio", "video"):
            raise SidecarError(f"{where}.kind: expected 'audio' or 'video', got {kind!r}")
        clock_rate = _require_int(fields, "clock_rate", where)
        if clock_rate <= 0:
            raise SidecarError(f"{where}.clock_rate: must be positive, got {clock_rate}")
        reports = fields.get("sender_reports", [])
        if not isinstance(reports, list):
            raise SidecarError(f"{where}.sender_reports: expected a list")
        return cls(
            kind="audio" if kind == "audio" else "video",
            codec=_require_str(fields, "codec", where),
            clock_rate=clock_rate,
            ssrc=_require_int(fields, "ssrc", where),
            first_rtp_timestamp=_require_int(fields, "first_rtp_timestamp", where),
            first_arrival_ms=_require_number(fields, "first_arrival_ms", where),
            offset_ms=_require_number(fields, "offset_ms", where),
            sender_reports=[
                SenderReport.from_dict(report, f"{where}.sender_reports[{index}]")
                for index, report in enumerate(reports)
            ],
            packets=_require_int(fields, "packets", where),
            bytes=_require_int(fields, "bytes", where),
        )


@dataclass
class Sidecar:
    """One stream record's sidecar (`<stream id>.json` next to the media file)."""

    room: str
    room_id: str
    stream: str
    participant: str
    kind: str  # "camera" | "screen"
    file: str  # media file name, relative to the sidecar's folder
    started_at_ms: float  # server wall clock (epoch ms) of file time 0
    ended_at_ms: float | None = None  # None while recording, or if the process died mid-record
    padded_ms: float = 0
    tracks: list[TrackTiming] = field(default_factory=list)
    version: int = SIDECAR_VERSION

    def track(self, kind: TrackKind) -> TrackTiming | None:
        return next((track for track in self.tracks if track.kind == kind), None)

    def media_path(self, sidecar_path: Path) -> Path:
        return sidecar_path.parent / self.file

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "room": self.room,
            "room_id": self.room_id,
            "stream": self.stream,
            "participant": self.participant,
            "kind": self.kind,
            "file": self.file,
            "started_at_ms": self.started_at_ms,
            "ended_at_ms": self.ended_at_ms,
            "padded_ms": self.padded_ms,
            "tracks": [track.to_dict() for track in self.tracks],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: object) -> Sidecar:
        fields = _require_object(data, "sidecar")
        version = fields.get("version")
        if version != SIDECAR_VERSION:
            raise SidecarError(f"sidecar.version: expected {SIDECAR_VERSION}, got {version!r}")
        tracks = fields.get("tracks")
        if not isinstance(tracks, list):
            raise SidecarError("sidecar.tracks: expected a list")
        ended = fields.get("ended_at_ms")
        return cls(
            version=SIDECAR_VERSION,
            room=_require_str(fields, "room", "sidecar"),
            room_id=_require_str(fields, "room_id", "sidecar"),
            stream=_require_str(fields, "stream", "sidecar"),
            participant=_require_str(fields, "participant", "sidecar"),
            kind=_require_str(fields, "kind", "sidecar"),
            file=_require_str(fields, "file", "sidecar"),
            started_at_ms=_require_number(fields, "started_at_ms", "sidecar"),
            ended_at_ms=None if ended is None else _require_number(fields, "ended_at_ms", "sidecar"),
            padded_ms=_require_number(fields, "padded_ms", "sidecar") if "padded_ms" in fields else 0,
            tracks=[TrackTiming.from_dict(track, f"sidecar.tracks[{index}]") for index, track in enumerate(tracks)],
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Sidecar:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise SidecarError(f"sidecar: not JSON ({error})") from error
        return cls.from_dict(data)


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


def _require_object(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise SidecarError(f"{where}: expected an object")
    return data


def _require_str(fields: Mapping[str, Any], key: str, where: str) -> str:
    value = fields.get(key)
    if not isinstance(value, str):
        raise SidecarError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _require_int(fields: Mapping[str, Any], key: str, where: str) -> int:
    value = fields.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SidecarError(f"{where}.{key}: expected an integer, got {value!r}")
    return value


def _require_number(fields: Mapping[str, Any], key: str, where: str) -> float:
    value = fields.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SidecarError(f"{where}.{key}: expected a number, got {value!r}")
    return float(value)
