"""Repair of a stream record whose writer was killed.

A record's clusters are flushed as they close, so a process killed
mid-record leaves a playable file, but one without what the muxer writes
when it closes: the duration in the header and the seek index (Cues).
Players then show no length and seek by guessing, or not at all.

Repair copies the file's packets as they are (no decoding, no encoding) into
a new file of the same format, whose muxer writes both when it closes; an
H.264 record, whose normal end turns the Matroska into MP4, becomes that MP4.
The copy reads until the first packet it cannot read whole, writes under a
temporary name and replaces the original with a rename, so a reader sees the
old file or the new one, never half of one. The sidecar then names the new
file and notes ``repaired``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from recording.sidecar import Sidecar, SidecarError, sidecar_read, sidecar_write

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = {".webm": "webm", ".mkv": "matroska", ".mp4": "mp4"}


class RecordRepairError(Exception):
    """A record that could not be repaired (nothing readable in it, or no space to copy it)."""


@dataclass(frozen=True)
class RepairResult:
    path: Path  # the repaired file (an H.264 record's is the .mp4)
    duration_ms: int
    size_bytes: int
    packets: int


def repaired_path(path: Path, video_codec: str | None) -> Path:
    """Where a record ends up: an H.264 Matroska record's normal end is an MP4 beside it."""
    if path.suffix == ".mkv" and video_codec == "h264":
        return path.with_suffix(".mp4")
    return path


def record_repair(path: Path, sidecar_path: Path | None = None) -> RepairResult:
    """Rewrite the record at ``path`` with a duration and a seek index; update its sidecar."""
    try:
        with av.open(str(path)) as probe:
            video = next((stream for stream in probe.streams.video), None)
            target = repaired_path(path, video.codec_context.name if video is not None else None)
    except av.error.FFmpegError as error:
        raise RecordRepairError(f"{path.name}: unreadable ({error})") from error
    temporary = target.with_name(f".{target.name}.repair")
    try:
        packets, end_s = _packets_copy(path, temporary, OUTPUT_FORMATS[target.suffix])
        if not packets:
            raise RecordRepairError(f"{path.name}: no packet could be read")
        os.replace(temporary, target)
    except av.error.FFmpegError as error:
        raise RecordRepairError(f"{path.name}: could not be copied ({error})") from error
    finally:
        temporary.unlink(missing_ok=True)
    if sidecar_path is not None:
        _sidecar_note(sidecar_path, target)
    if target != path:
        # Only now: until the sidecar names the MP4, readers look for this file.
        path.unlink(missing_ok=True)
    logger.info("repaired %s: %d packets, %.2f s", target.name, packets, end_s)
    return RepairResult(path=target, duration_ms=round(end_s * 1000), size_bytes=target.stat().st_size, packets=packets)


def _packets_copy(source: Path, target: Path, output_format: str) -> tuple[int, float]:
    """Copy every whole packet of ``source`` into ``target``; how many, and where the last one ends (s)."""
    copied, end_s = 0, 0.0
    with av.open(str(source)) as reader, av.open(str(target), "w", format=output_format) as writer:
        inputs = [stream for stream in reader.streams if stream.type in ("audio", "video")]
        outputs = {stream.index: writer.add_stream_from_template(stream) for stream in inputs}
        last_dts: dict[int, int] = {}
        for packet in _whole_packets(reader, inputs):
            index = packet.stream.index
            if packet.dts is None or packet.dts <= last_dts.get(index, -1):
                continue
            last_dts[index] = packet.dts
            if packet.time_base is not None and packet.pts is not None:
                end_s = max(end_s, float((packet.pts + (packet.duration or 0)) * packet.time_base))
            packet.stream = outputs[index]
            writer.mux(packet)
            copied += 1
    return copied, end_s


def _whole_packets(reader: Any, inputs: list[Any]) -> Any:
    """The packets up to where the file was cut: a killed writer's last bytes may end mid-packet."""
    packets = reader.demux(*inputs)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except (av.error.FFmpegError, OSError) as error:
            logger.info("record read up to a cut: %s", error)
            return
        if packet.is_corrupt:
            return
        yield packet


def _sidecar_note(sidecar_path: Path, media: Path) -> None:
    try:
        sidecar: Sidecar = sidecar_read(sidecar_path)
    except (OSError, SidecarError) as error:
        logger.warning("the sidecar of repaired record %s was not updated: %s", media.name, error)
        return
    sidecar.file = media.name
    sidecar.repaired = True
    sidecar_write(sidecar_path, sidecar)
