"""Per-stream records: a published stream's encoded frames written as they are.

A ``StreamRecorder`` is one more sink on a published stream's taps, next to
the players. On the event loop it only timestamps a frame and queues it; a
writer thread muxes the frames with PyAV into WebM (VP8 + Opus) or Matroska
(H.264, remuxed to MP4 when the record ends; anything with G.711), with no
decoding or encoding, so a slow disk never holds up forwarding. The sidecar
JSON beside the file keeps what aligning the record needs later: first RTP
timestamps, arrival times and the RTCP sender reports.

File time 0 is the arrival of the first video keyframe (the first audio
packet for a stream without video): nothing before it can be shown. Each
track's packets sit at (its first arrival - time 0) + RTP time since its
first packet, so the file is aligned by arrival and the sidecar can do
better. Clusters are closed every half second and flushed, so a process
killed mid-record leaves a playable file that lacks less than the last
second (and, until ``recording.repair`` rewrites it, its duration and seek
index).
"""

from __future__ import annotations

import fractions
import io
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtcpSrPacket

from ops import metrics
from recording.disk_space import DiskRefusal, free_space_refusal
from recording.sidecar import (
    RTP_TIMESTAMP_MODULUS,
    SenderReport,
    Sidecar,
    TrackKind,
    TrackTiming,
    rtp_timestamp_delta,
    sidecar_write,
)
from rooms.media.keyframes import is_keyframe

logger = logging.getLogger(__name__)

# A writer this far behind (about 20 s of a camera's frames and packets) is
# stuck on its disk: the record fails rather than eating the node's memory.
MAX_QUEUED_FRAMES = 2000
# Sender reports arrive about once a second; alignment uses the earliest.
MAX_SENDER_REPORTS = 64
SIDECAR_REWRITE_INTERVAL_S = 5.0
WRITER_NAP_S = 0.25
# The writer looks at the free space this often (one statvfs), never per
# packet: a camera writes well under a megabyte in this time.
DISK_CHECK_INTERVAL_S = 2.0
NTP_UNIX_OFFSET_S = 2_208_988_800

# Clusters closed every half second and each flushed as it closes: what a
# killed process loses is the open cluster and the writer's nap, at most
# ~0.75 s (recording.repair then gives the file its duration and index).
LIVE_MUXER_OPTIONS = {"cluster_time_limit": "500", "flush_packets": "1"}

MUX_CODECS = {"VP8": "vp8", "H264": "h264", "opus": "opus", "PCMU": "pcm_mulaw", "PCMA": "pcm_alaw"}


def record_extension(codecs: dict[str, str]) -> str:
    """The container a stream's codecs are written in while recording."""
    if codecs.get("audio") in ("PCMU", "PCMA") or codecs.get("video") == "H264":
        return "mkv"
    return "webm"


def ntp_to_unix_ms(ntp_timestamp: int) -> float:
    seconds, fraction = ntp_timestamp >> 32, ntp_timestamp & 0xFFFFFFFF
    return (seconds - NTP_UNIX_OFFSET_S + fraction / 2**32) * 1000.0


@dataclass(frozen=True)
class RecordTarget:
    directory: Path
    stream_id: str
    room: str
    room_id: str
    participant: str
    kind: str  # camera | screen


@dataclass(frozen=True)
class RecordResult:
    path: Path
    sidecar_path: Path
    size_bytes: int
    duration_ms: int
    failure: str  # empty when the record is complete
    packets: int
    # Why the record stopped before its stream ended (its file is complete
    # and playable up to there); None when it did not.
    stopped: DiskRefusal | None = None


class StreamRecorder:
    def __init__(
        self,
        target: RecordTarget,
        codecs: dict[str, str],
        ssrcs: dict[str, int | None],
        rtp_origins: Callable[[str], int | None] = lambda kind: None,
        on_stopped: Callable[[DiskRefusal], None] = lambda refusal: None,
    ) -> None:
        """``on_stopped`` is called on the writer thread when the free space
        falls below RECORDINGS_MIN_FREE_MB and the record stops."""
        self.target = target
        self.codecs = dict(codecs)
        self._ssrcs = ssrcs
        # kind -> the sender's RTP timestamp of the first frame (the tap's are rebased to 0)
        self._rtp_origins = rtp_origins
        target.directory.mkdir(parents=True, exist_ok=True)
        self.path = target.directory / f"{target.stream_id}.{record_extension(codecs)}"
        self.sidecar_path = target.directory / f"{target.stream_id}.json"
        self.sidecar: Sidecar | None = None
        self.failure = ""
        self.stopped: DiskRefusal | None = None
        self._on_stopped = on_stopped
        self._tracks: dict[str, TrackTiming] = {}
        self._queue: queue.SimpleQueue[tuple[str, bytes, int] | None] = queue.SimpleQueue()
        self._closing = False
        self._duration_ms = 0
        self._thread = threading.Thread(target=self._write_all, name=f"record-{target.stream_id}", daemon=True)
        self._thread.start()

    # --- event loop side ---------------------------------------------------------

    def queued_frames(self) -> int:
        """Frames waiting for the writer thread."""
        return self._queue.qsize()

    def sink(self, kind: str) -> Callable[[RTCRtpCodecParameters, JitterFrame], None]:
        def on_frame(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
            self._on_frame(kind, codec, frame)

        return on_frame

    def _on_frame(self, kind: str, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        if self._closing or self.failure:
            return
        arrival_ms = time.time() * 1000
        if self.sidecar is None:
            starts_record = kind == "video" if "video" in self.codecs else kind == "audio"
            if not starts_record or (kind == "video" and not is_keyframe(codec.name, frame.data)):
                return
            self.sidecar = Sidecar(
                room=self.target.room, room_id=self.target.room_id, stream=self.target.stream_id,
                participant=self.target.participant, kind=self.target.kind, file=self.path.name,
                started_at_ms=arrival_ms, tracks=[],
            )
        track = self._tracks.get(kind)
        if track is None:
            origin = self._rtp_origins(kind)
            track = self._tracks[kind] = TrackTiming(
                kind=_track_kind(kind), codec=codec.name, clock_rate=codec.clockRate,
                ssrc=self._ssrcs.get(kind) or 0,
                first_rtp_timestamp=(frame.timestamp + (origin or 0)) % RTP_TIMESTAMP_MODULUS,
                first_arrival_ms=arrival_ms, offset_ms=arrival_ms - self.sidecar.started_at_ms,
                packets=0, bytes=0,
            )
            self.sidecar.tracks.append(track)
        if self._queue.qsize() >= MAX_QUEUED_FRAMES:
            self._fail("the disk did not keep up with the stream")
            return
        track.packets += 1
        track.bytes += len(frame.data)
        self._queue.put((kind, frame.data, frame.timestamp))

    def on_sender_report(self, kind: str, packet: RtcpSrPacket) -> None:
        track = self._tracks.get(kind)
        if track is None or len(track.sender_reports) >= MAX_SENDER_REPORTS:
            return
        if track.ssrc and packet.ssrc != track.ssrc:
            return  # e.g. the RTX stream's report
        track.sender_reports.append(
            SenderReport(
                ntp_ms=ntp_to_unix_ms(packet.sender_info.ntp_timestamp),
                rtp_timestamp=packet.sender_info.rtp_timestamp,
                arrival_ms=time.time() * 1000,
            )
        )

    def _fail(self, reason: str) -> None:
        if not self.failure:
            self.failure = reason
            logger.error("record of stream %s failed: %s", self.target.stream_id, reason)
        self._queue.put(None)

    def close_nowait(self) -> None:
        """Stop taking frames; the writer finishes the file on its own."""
        if not self._closing:
            self._closing = True
            self._queue.put(None)

    def close(self) -> RecordResult:
        """Finish the file and the sidecar (blocking: call it in a thread)."""
        self.close_nowait()
        self._thread.join()
        size = self.path.stat().st_size if self.path.exists() else 0
        metrics.RECORDER_BYTES.inc(size)
        packets = sum(track.packets for track in self._tracks.values())
        failure = self.failure or ("" if packets else "no media arrived")
        return RecordResult(
            path=self.path, sidecar_path=self.sidecar_path, size_bytes=size,
            duration_ms=self._duration_ms, failure=failure, packets=packets, stopped=self.stopped,
        )

    # --- writer thread -------------------------------------------------------------

    def _write_all(self) -> None:
        writer: _ContainerWriter | None = None
        last_sidecar_write = 0.0
        last_disk_check = time.monotonic()
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                if time.monotonic() - last_disk_check > DISK_CHECK_INTERVAL_S:
                    last_disk_check = time.monotonic()
                    self.stopped = free_space_refusal(self.target.directory)
                    if self.stopped is not None:
                        logger.warning("record of stream %s stops: %s", self.target.stream_id, self.stopped.reason)
                        break
                kind, data, timestamp = item
                if writer is None:
                    writer = _ContainerWriter(self.path, self.codecs, first_video=data if kind == "video" else None)
                assert self.sidecar is not None
                writer.write(self._tracks[kind], data, timestamp)
                if time.monotonic() - last_sidecar_write > SIDECAR_REWRITE_INTERVAL_S:
                    sidecar_write(self.sidecar_path, self.sidecar)
                    last_sidecar_write = time.monotonic()
                if self._queue.empty():
                    # Waking for each packet costs ten times writing it; a
                    # nap lets ~20 packets gather per wake-up. The file lags
                    # the stream by at most the nap.
                    time.sleep(WRITER_NAP_S)
        except Exception as error:
            logger.exception("writing the record of stream %s failed", self.target.stream_id)
            if not self.failure:
                self.failure = f"writing the file failed: {error}"
        finally:
            self._closing = True
        try:
            if writer is not None:
                writer.close()
                self._duration_ms = writer.duration_ms
                if self.path.suffix == ".mkv" and self.codecs.get("video") == "H264" and not self.failure:
                    self.path = _remux_to_mp4(self.path)
            if self.sidecar is not None:
                self.sidecar.file = self.path.name
                self.sidecar.ended_at_ms = time.time() * 1000
                sidecar_write(self.sidecar_path, self.sidecar)
        except Exception as error:
            logger.exception("finishing the record of stream %s failed", self.target.stream_id)
            self.failure = self.failure or f"finishing the file failed: {error}"
        if self.stopped is not None:
            self._on_stopped(self.stopped)


def _track_kind(kind: str) -> TrackKind:
    return "audio" if kind == "audio" else "video"


class _ContainerWriter:
    """PyAV muxing of encoded frames; lives on the writer thread."""

    def __init__(self, path: Path, codecs: dict[str, str], first_video: bytes | None) -> None:
        extension = path.suffix.lstrip(".")
        self.container: Any = av.open(
            str(path), "w", format="webm" if extension == "webm" else "matroska",
            options=LIVE_MUXER_OPTIONS,
        )
        self.streams: dict[str, Any] = {}
        self.time_bases: dict[str, fractions.Fraction] = {}
        self._last_pts: dict[str, int] = {}
        self._unwrapped: dict[str, tuple[int, int]] = {}  # kind -> (last RTP ts, unwrapped ticks since first)
        self.duration_ms = 0
        if "video" in codecs:
            if codecs["video"] == "H264" and first_video:
                self.streams["video"] = _add_h264_stream(self.container, first_video)
            else:
                width, height = _frame_size(codecs["video"], first_video)
                self.streams["video"] = self.container.add_mux_stream(
                    MUX_CODECS[codecs["video"]], width=width, height=height
                )
            self.time_bases["video"] = fractions.Fraction(1, 90000)
        if "audio" in codecs:
            audio_codec = codecs["audio"]
            if audio_codec == "opus":
                # The encoder's context carries the OpusHead the container needs.
                self.streams["audio"] = self.container.add_stream("libopus", rate=48000, layout="stereo")
                self.time_bases["audio"] = fractions.Fraction(1, 48000)
            else:
                self.streams["audio"] = self.container.add_mux_stream(MUX_CODECS[audio_codec], rate=8000)
                self.time_bases["audio"] = fractions.Fraction(1, 8000)

    def write(self, track: TrackTiming, data: bytes, timestamp: int) -> None:
        kind = track.kind
        last = self._unwrapped.get(kind)
        ticks = 0 if last is None else last[1] + rtp_timestamp_delta(timestamp, last[0])
        self._unwrapped[kind] = (timestamp, ticks)
        time_base = self.time_bases[kind]
        pts = round(track.offset_ms / 1000 / time_base) + ticks
        if pts <= self._last_pts.get(kind, -1):
            return  # a late duplicate or reordered packet: the muxer needs rising timestamps
        self._last_pts[kind] = pts
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = time_base
        packet.stream = self.streams[kind]
        if kind == "video":
            packet.is_keyframe = is_keyframe(track.codec, data)
        self.container.mux(packet)
        self.duration_ms = max(self.duration_ms, int(pts * time_base * 1000))

    def close(self) -> None:
        self.container.close()


def _frame_size(codec: str, keyframe: bytes | None) -> tuple[int, int]:
    """Width and height from the first keyframe (decoded once; nothing else is)."""
    if not keyframe:
        return 640, 480
    try:
        decoder: Any = av.CodecContext.create(MUX_CODECS[codec], "r")
        for frame in decoder.decode(av.Packet(keyframe)):
            return int(frame.width), int(frame.height)
        for frame in decoder.decode(None):
            return int(frame.width), int(frame.height)
    except av.error.FFmpegError:
        logger.warning("could not read the size of a %s keyframe", codec)
    return 640, 480


def _add_h264_stream(container: Any, keyframe: bytes) -> Any:
    """An H.264 stream shaped by the first keyframe alone: its size, and its
    SPS/PPS as extradata, which the Matroska muxer turns (with every
    packet) into the avcC form the container wants."""
    with av.open(io.BytesIO(keyframe), format="h264") as probe:
        # The template must outlive the copy: add while the probe is open.
        return container.add_stream_from_template(probe.streams.video[0])


def _remux_to_mp4(source: Path) -> Path:
    """Copy an H.264 record's packets from Matroska into MP4, then drop the Matroska."""
    target = source.with_suffix(".mp4")
    temporary = target.with_name(f".{target.name}.tmp")
    with av.open(str(source)) as input_container, av.open(str(temporary), "w", format="mp4") as output:
        mapping = {
            stream.index: output.add_stream_from_template(stream)
            for stream in input_container.streams
            if stream.type in ("audio", "video")
        }
        for packet in input_container.demux():
            if packet.dts is None or packet.stream.index not in mapping:
                continue
            packet.stream = mapping[packet.stream.index]
            output.mux(packet)
    os.replace(temporary, target)
    source.unlink()
    return target
