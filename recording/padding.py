"""Synchronized stream records: black video and silence ahead of a record.

With ``RECORDING_EMPTY_SHIFT`` every stream record of a room is made to
start at the room's first stream start, as the reference server's
``enable_empty_shift_writer`` does, so records can be merged side by side
without knowing their offsets (the reference's ffmpeg merge command).

Only the prepended gap is encoded (black frames at the record's first frame
size, Opus or G.711 silence); the recorded packets are copied after it as
they are, shifted by the gap. The result replaces the record through a
temporary file and a rename, and the sidecar notes ``padded_ms``, so
padding twice changes nothing.
"""

from __future__ import annotations

import fractions
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from recording.sidecar import Sidecar, sidecar_read, sidecar_write

logger = logging.getLogger(__name__)

# Gaps shorter than a video frame are not worth a frame.
MIN_GAP_MS = 34
BLACK_FPS = 30
FORMATS = {".webm": "webm", ".mkv": "matroska", ".mp4": "mp4"}
ENCODERS = {"vp8": "libvpx", "h264": "libx264", "opus": "libopus", "pcm_mulaw": "pcm_mulaw", "pcm_alaw": "pcm_alaw"}


@dataclass(frozen=True)
class PadResult:
    padded_ms: float
    path: Path


def record_pad(sidecar_path: Path, room_start_ms: float) -> PadResult:
    """Prepend black/silence so the record starts at ``room_start_ms``."""
    sidecar = sidecar_read(sidecar_path)
    media = sidecar.media_path(sidecar_path)
    gap_ms = sidecar.started_at_ms - room_start_ms
    if gap_ms < MIN_GAP_MS:
        return PadResult(0.0, media)
    temporary = media.with_name(f".{media.name}.padding")
    try:
        _write_padded(media, temporary, gap_ms)
        os.replace(temporary, media)
    finally:
        temporary.unlink(missing_ok=True)
    _shift_sidecar(sidecar, gap_ms)
    sidecar_write(sidecar_path, sidecar)
    logger.info("padded %s with %.0f ms", media.name, gap_ms)
    return PadResult(gap_ms, media)


def _shift_sidecar(sidecar: Sidecar, gap_ms: float) -> None:
    sidecar.padded_ms += gap_ms
    sidecar.started_at_ms -= gap_ms
    for track in sidecar.tracks:
        track.offset_ms += gap_ms


def _write_padded(source: Path, target: Path, gap_ms: float) -> None:
    first_dts = _first_dts(source)
    with av.open(str(source)) as reader, av.open(str(target), "w", format=FORMATS[source.suffix]) as writer:
        inputs = [stream for stream in reader.streams if stream.type in ("audio", "video")]
        outputs = {stream.index: writer.add_stream_from_template(stream) for stream in inputs}
        writer.start_encoding()
        shift = {stream.index: round(gap_ms / 1000 / _time_base(stream)) for stream in inputs}
        for stream in inputs:
            # The gap is whole frames (20 ms of audio, 1/30 s of video) and an
            # encoder's flushed tail may reach past it: what would land on or
            # after the record's first packet is dropped, since a muxer
            # refuses timestamps that go back.
            record_start = shift[stream.index] + first_dts.get(stream.index, 0)
            for packet in _gap_packets(stream, gap_ms):
                if packet.dts is not None and packet.dts >= record_start:
                    continue
                packet.stream = outputs[stream.index]
                writer.mux(packet)
        for packet in reader.demux(*inputs):
            if packet.dts is None:
                continue
            offset = shift[packet.stream.index]
            packet.pts = None if packet.pts is None else packet.pts + offset
            packet.dts += offset
            packet.stream = outputs[packet.stream.index]
            writer.mux(packet)


def _first_dts(source: Path) -> dict[int, int]:
    """Each audio/video stream's first decoding timestamp, in its time base."""
    first: dict[int, int] = {}
    with av.open(str(source)) as reader:
        inputs = [stream for stream in reader.streams if stream.type in ("audio", "video")]
        for packet in reader.demux(*inputs):
            if packet.dts is not None:
                first.setdefault(packet.stream.index, packet.dts)
            if len(first) == len(inputs):
                break
    return first


def _gap_packets(stream: Any, gap_ms: float) -> Iterator[av.Packet[Any]]:
    if stream.type == "video":
        yield from _black_video(stream, gap_ms)
    else:
        yield from _silence(stream, gap_ms)


def _first_frame_size(stream: Any) -> tuple[int, int]:
    width, height = stream.codec_context.width, stream.codec_context.height
    return (width or 640) // 2 * 2, (height or 480) // 2 * 2


def _black_video(stream: Any, gap_ms: float) -> Iterator[av.Packet[Any]]:
    width, height = _first_frame_size(stream)
    encoder: Any = av.CodecContext.create(ENCODERS[stream.codec_context.name], "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = fractions.Fraction(1, BLACK_FPS)
    encoder.framerate = fractions.Fraction(BLACK_FPS)
    if encoder.name == "libx264":
        # Baseline like the browsers' streams; parameter sets in band, since
        # the track's own extradata describes the recorded frames.
        encoder.profile = "Constrained Baseline"
        encoder.options = {"preset": "veryfast", "tune": "zerolatency", "repeat-headers": "1"}
    count = max(1, round(gap_ms / 1000 * BLACK_FPS))
    black = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(black.planes, (16, 128, 128), strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    frames = []
    for index in range(count):
        black.pts = index
        frames.extend(encoder.encode(black))
    frames.extend(encoder.encode(None))
    for packet in frames:
        if encoder.name == "libx264":
            packet = _length_prefixed(packet)
        yield _rebased(packet, stream.time_base)


def _silence(stream: Any, gap_ms: float) -> Iterator[av.Packet[Any]]:
    rate = stream.codec_context.sample_rate or 48000
    encoder: Any = av.CodecContext.create(ENCODERS[stream.codec_context.name], "w")
    encoder.sample_rate = rate
    encoder.layout = "stereo" if encoder.name == "libopus" else "mono"
    encoder.format = "s16"
    encoder.time_base = fractions.Fraction(1, rate)
    samples_per_frame = rate // 50  # 20 ms, as WebRTC sends
    count = max(1, round(gap_ms / 20))
    for index in range(count):
        frame = av.AudioFrame(format="s16", layout=encoder.layout.name, samples=samples_per_frame)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = rate
        frame.pts = index * samples_per_frame
        for packet in encoder.encode(frame):
            yield _rebased(packet, stream.time_base)
    for packet in encoder.encode(None):
        yield _rebased(packet, stream.time_base)


def _length_prefixed(packet: av.Packet[Any]) -> av.Packet[Any]:
    """Annex B (start codes, as the encoder writes) to the length-prefixed
    NAL units the track's avcC extradata promises."""
    units = [unit for unit in re.split(b"\x00\x00\x00\x01|\x00\x00\x01", bytes(packet)) if unit]
    converted = av.Packet(b"".join(len(unit).to_bytes(4, "big") + unit for unit in units))
    converted.pts, converted.dts, converted.time_base = packet.pts, packet.dts, packet.time_base
    converted.is_keyframe = packet.is_keyframe
    return converted


def _rebased(packet: av.Packet[Any], time_base: fractions.Fraction) -> av.Packet[Any]:
    source = packet.time_base
    if source is not None and source != time_base:
        if packet.pts is not None:
            packet.pts = round(packet.pts * source / time_base)
        if packet.dts is not None:
            packet.dts = round(packet.dts * source / time_base)
        packet.time_base = time_base
    return packet


def _time_base(stream: Any) -> fractions.Fraction:
    time_base = stream.time_base
    if time_base is None:
        raise ValueError(f"stream {stream.index} of the record has no time base")
    return fractions.Fraction(time_base)
