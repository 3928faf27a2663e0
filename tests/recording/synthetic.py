"""Synthetic stream records in the capture's format: a VP8 + Opus WebM file and its sidecar JSON.

The file is laid out exactly as ``recording.capture`` lays out a live
record: t=0 is the first packet's arrival, each track's packets sit at the
track's ``offset_ms`` plus its RTP time since its first packet, video in a
1/90000 and audio in a 1/48000 time base, the Opus stream created with codec
``libopus`` so it carries its OpusHead. Only the encoded packets are
synthetic (encoded here with libvpx and libopus instead of by a browser).

Ground truth: both tracks come from one sender and the sender's frame ``i``
and sample ``n`` are captured at media time ``i / fps`` and ``n / 48000``. A
flash (white frames) and a beep (1 kHz tone) given the same time are
simultaneous in truth. ``audio_offset_error_ms`` places the audio that much
later in the file than truth, as arrival-time placement does; the sender
reports (if any) still tell the truth, so a mixer that reads them can undo it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from recording.sidecar import RTP_TIMESTAMP_MODULUS, SenderReport, Sidecar, TrackTiming, sidecar_write

AUDIO_RATE = 48000
OPUS_FRAME_SAMPLES = 960  # 20 ms, what browsers send
VIDEO_CLOCK = 90000
DEFAULT_STARTED_AT_MS = 1_764_180_000_123.4
# The sender's wall clock is not the server's: only differences on one clock may be compared.
SENDER_CLOCK_OFFSET_MS = -3_600_000.0 + 17.3
NETWORK_DELAY_MS = 5.0
BEEP_HZ = 1000.0
BEEP_AMPLITUDE = 0.5


@dataclass(frozen=True)
class SyntheticRecord:
    stream: str = "stream-a"
    participant: str = "alice"
    room: str = "synthetic-room"
    room_id: str = "room-live-id"
    kind: str = "camera"
    duration_s: float = 3.0
    width: int = 320
    height: int = 240
    fps: int = 30
    colour: tuple[int, int, int] = (200, 40, 40)  # RGB of the whole picture
    flash_times_s: tuple[float, ...] = ()  # media times of white flashes
    flash_duration_s: float = 0.1
    beep_times_s: tuple[float, ...] = ()  # media times of 1 kHz beeps
    beep_duration_s: float = 0.1
    started_at_ms: float = DEFAULT_STARTED_AT_MS  # server clock of the first packet's arrival
    audio_offset_error_ms: float = 0.0  # audio placed this much later in the file than truth (may be < 0)
    has_video: bool = True
    has_audio: bool = True
    sender_reports: bool = True
    ended: bool = True  # False: ended_at_ms null, as after a crash mid-record
    textured: bool = False  # sensor-like noise and a moving bar, so encoders have real work (benchmarks)
    resize_at_s: float | None = None  # from this media time on, frames are `resized` (a new keyframe)
    resized: tuple[int, int] = (240, 320)
    first_rtp: dict[str, int] = field(
        # Close to the 32-bit wrap, so readers must unwrap.
        default_factory=lambda: {"video": RTP_TIMESTAMP_MODULUS - 45_000, "audio": RTP_TIMESTAMP_MODULUS - 24_000}
    )


def synthetic_record_write(folder: Path, record: SyntheticRecord) -> Path:
    """Write ``<stream>.webm`` and ``<stream>.json`` into ``folder``; return the sidecar's path."""
    folder.mkdir(parents=True, exist_ok=True)
    media_path = folder / f"{record.stream}.webm"
    offsets = _track_offsets_ms(record)
    sidecar = Sidecar(
        room=record.room,
        room_id=record.room_id,
        stream=record.stream,
        participant=record.participant,
        kind=record.kind,
        file=media_path.name,
        started_at_ms=record.started_at_ms,
        ended_at_ms=record.started_at_ms + max(offsets.values()) + record.duration_s * 1000 if record.ended else None,
        tracks=[],
    )
    container: Any = av.open(str(media_path), "w", format="webm")
    streams: dict[str, Any] = {}
    if record.has_video:
        streams["video"] = container.add_mux_stream("vp8", width=record.width, height=record.height)
    if record.has_audio:
        streams["audio"] = container.add_stream("libopus", rate=AUDIO_RATE, layout="stereo")
    for kind, stream in streams.items():
        clock = VIDEO_CLOCK if kind == "video" else AUDIO_RATE
        track = TrackTiming(
            kind="video" if kind == "video" else "audio",
            codec="VP8" if kind == "video" else "opus",
            clock_rate=clock,
            ssrc=1000 + len(sidecar.tracks),
            first_rtp_timestamp=record.first_rtp[kind],
            first_arrival_ms=record.started_at_ms + offsets[kind],
            offset_ms=offsets[kind],
            sender_reports=_sender_reports(record, offsets[kind], clock, record.first_rtp[kind]),
            packets=0,
            bytes=0,
        )
        sidecar.tracks.append(track)
        packets = _video_packets(record) if kind == "video" else _audio_packets(record)
        time_base = Fraction(1, clock)
        offset_ticks = round(offsets[kind] * clock / 1000)
        for media_ticks, data, keyframe in packets:
            packet = av.Packet(data)
            packet.pts = packet.dts = offset_ticks + media_ticks
            packet.time_base = time_base
            packet.stream = stream
            packet.is_keyframe = keyframe
            container.mux(packet)
            track.packets += 1
            track.bytes += len(data)
    container.close()
    sidecar_path = folder / f"{record.stream}.json"
    sidecar_write(sidecar_path, sidecar)
    return sidecar_path


def yuv_of_rgb(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited range, what libswscale assumes for yuv420p without colour metadata."""
    red, green, blue = colour
    luma = 16 + (65.481 * red + 128.553 * green + 24.966 * blue) / 255
    blue_difference = 128 + (-37.797 * red - 74.203 * green + 112.0 * blue) / 255
    red_difference = 128 + (112.0 * red - 93.786 * green - 18.214 * blue) / 255
    return round(luma), round(blue_difference), round(red_difference)


def _track_offsets_ms(record: SyntheticRecord) -> dict[str, float]:
    """Where each track's first packet sits in the file: the earliest one at 0."""
    error = record.audio_offset_error_ms if record.has_video else 0.0
    offsets = {}
    if record.has_video:
        offsets["video"] = max(0.0, -error)
    if record.has_audio:
        offsets["audio"] = max(0.0, error)
    return offsets


def _sender_reports(record: SyntheticRecord, offset_ms: float, clock: int, first_rtp: int) -> list[SenderReport]:
    """One report a second, true on the sender's clock; arrival follows the file's placement."""
    if not record.sender_reports:
        return []
    reports = []
    media_s = 0.25
    while media_s < record.duration_s:
        reports.append(
            SenderReport(
                ntp_ms=record.started_at_ms + SENDER_CLOCK_OFFSET_MS + media_s * 1000,
                rtp_timestamp=(first_rtp + round(media_s * clock)) % RTP_TIMESTAMP_MODULUS,
                arrival_ms=record.started_at_ms + offset_ms + media_s * 1000 + NETWORK_DELAY_MS,
            )
        )
        media_s += 1.0
    # Stored newest first: readers must pick the earliest themselves.
    return reports[::-1]


def _video_packets(record: SyntheticRecord) -> Iterator[tuple[int, bytes, bool]]:
    """(media time in 1/90000, VP8 frame, is keyframe) for every frame."""
    frame_count = round(record.duration_s * record.fps)
    resize_at = frame_count if record.resize_at_s is None else round(record.resize_at_s * record.fps)
    ticks_per_frame = VIDEO_CLOCK // record.fps
    # A size change is a new encoder whose first frame is a keyframe, as a browser does it.
    parts = (((record.width, record.height), range(resize_at)), (record.resized, range(resize_at, frame_count)))
    for size, frames in parts:
        if not frames:
            continue
        encoder = _vp8_encoder(record, size)
        painter = _VideoPainter(record, size)
        for index in [*frames, None]:
            frame = None
            if index is not None:
                frame = av.VideoFrame.from_ndarray(painter.paint(index), format="yuv420p")
                frame.pts = index
            for packet in encoder.encode(frame):
                yield int(packet.pts) * ticks_per_frame, bytes(packet), bool(packet.is_keyframe)


def _vp8_encoder(record: SyntheticRecord, size: tuple[int, int]) -> Any:
    encoder: Any = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height = size
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, record.fps)
    encoder.framerate = Fraction(record.fps, 1)
    encoder.bit_rate = 1_000_000
    encoder.gop_size = 2 * record.fps
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    return encoder


class _VideoPainter:
    def __init__(self, record: SyntheticRecord, size: tuple[int, int]) -> None:
        self.record = record
        width, height = size
        self.width, self.height = size
        luma, blue, red = yuv_of_rgb(record.colour)
        self.base = np.empty((height * 3 // 2, width), dtype=np.uint8)
        self.base[:height] = luma
        chroma = self.base[height:].reshape(-1)
        chroma[: width * height // 4] = blue
        chroma[width * height // 4 :] = red
        self.white = self.base.copy()
        self.white[:height] = 235
        self.white[height:] = 128
        self.random = np.random.default_rng(7)

    def paint(self, index: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
        record = self.record
        media_s = index / record.fps
        if any(start <= media_s < start + record.flash_duration_s for start in record.flash_times_s):
            return self.white
        if not record.textured:
            return self.base
        picture = self.base.copy()
        luma = picture[: self.height].astype(np.int16)
        luma += self.random.integers(-8, 9, size=luma.shape, dtype=np.int16)
        bar = (index * 4) % self.width
        luma[:, bar : bar + 16] = 220
        picture[: self.height] = np.clip(luma, 16, 235).astype(np.uint8)
        return picture


def _audio_packets(record: SyntheticRecord) -> Iterator[tuple[int, bytes, bool]]:
    """(media time in 1/48000, Opus packet, True) for every 20 ms.

    Packets are placed by the time of their first input sample, as RTP
    timestamps are. Decoding drops the pre-skip and shifts the timestamps by
    it, yet the encoder's input appears that much late (its lookahead): the
    signal is generated that much early, so the decoded file is exact.
    """
    encoder: Any = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = AUDIO_RATE
    encoder.layout = "stereo"
    encoder.format = "s16"
    encoder.time_base = Fraction(1, AUDIO_RATE)
    encoder.bit_rate = 64_000
    encoder.open()
    pre_skip = int.from_bytes(bytes(encoder.extradata)[10:12], "little")  # OpusHead's pre-skip field
    total = round(record.duration_s * AUDIO_RATE)
    times = (np.arange(total, dtype=np.float64) + pre_skip) / AUDIO_RATE
    signal = np.zeros_like(times)
    for start in record.beep_times_s:
        inside = (times >= start) & (times < start + record.beep_duration_s)
        signal[inside] = BEEP_AMPLITUDE * np.sin(2 * math.pi * BEEP_HZ * (times[inside] - start))
    samples = (signal * 32767).astype(np.int16)
    frame_index = 0
    for first in range(0, total, OPUS_FRAME_SAMPLES):
        chunk = samples[first : first + OPUS_FRAME_SAMPLES]
        if len(chunk) < OPUS_FRAME_SAMPLES:
            chunk = np.concatenate([chunk, np.zeros(OPUS_FRAME_SAMPLES - len(chunk), dtype=np.int16)])
        frame = av.AudioFrame.from_ndarray(np.repeat(chunk, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = first
        for packet in encoder.encode(frame):
            yield frame_index * OPUS_FRAME_SAMPLES, bytes(packet), True
            frame_index += 1
    for packet in encoder.encode(None):
        yield frame_index * OPUS_FRAME_SAMPLES, bytes(packet), True
        frame_index += 1
