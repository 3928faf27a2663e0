"""Recording variants of the benchmark server, for ``tests/bench/recording.py``.

``tests/bench/forwarding_server.py --variant streams...`` runs these. Any
number of publishers, each played by one player (the k-th ``play`` plays the
k-th published stream), all through the project's SFU core
(``rooms.media.peer.PublishedStream`` and ``PlayedStream``), so every variant
forwards the same way and differs only in how it records:

- ``streams``: nothing is recorded;
- ``streams-recorder``: the project's ``recording.capture.StreamRecorder``, one
  more sink on each stream's taps, wired as ``recording.node_records`` wires
  it (without the database rows);
- ``streams-mediarecorder``: the baseline, the way aiortc's users record:
  ``aiortc.contrib.media.MediaRecorder`` writing an MP4 (H.264 + AAC, encoded
  again) from the receiver's decoded tracks. The project's tap spares the
  receiver its decoding; here ``DecodingTap`` also hands every frame to
  aiortc's own decoder thread, so the receiver decodes exactly as a plain
  aiortc receiver does while forwarding stays encoded passthrough.

Records go to a temporary directory. The ``stats`` reply names it
(``records``) and carries, per stream in publish order, the wall-clock time
its first keyframe arrived (``first_media_at``, Unix seconds), and the CPU
seconds so far of the recorders' writer threads (``writer_cpu_s``) and of
their sinks on the event loop (``sink_cpu_s``, timed around each call).
``quit`` finishes every record before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiortc import RTCRtpTransceiver
from aiortc.contrib.media import MediaRecorder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from recording.attach import recorder_attach
from recording.capture import RecordTarget, StreamRecorder
from rooms.media.peer import PlayedStream, PublishedStream
from rooms.media.tap import EncodedFrameTap, FrameSink, check_aiortc_internals

logger = logging.getLogger("recording_server")

RECORDING_VARIANTS = ("streams", "streams-recorder", "streams-mediarecorder")
BASELINE_EXTENSION = "mp4"  # aiortc's MediaRecorder picks libx264 + AAC for it
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class DecodingTap(EncodedFrameTap):
    """The tap, with the receiver's decoding kept: frames go to the sinks and to aiortc's decoder thread."""

    def __init__(self) -> None:
        super().__init__()
        self._to_decoder: queue.SimpleQueue[tuple[RTCRtpCodecParameters, JitterFrame] | None] = queue.SimpleQueue()

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        super().put(item)
        self._to_decoder.put(item)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._to_decoder.get()


class DecodedPublishedStream(PublishedStream):
    """A published stream whose receivers also decode, as aiortc's do when nothing replaces their queue."""

    def _prepare_receiver(self, transceiver: RTCRtpTransceiver, video_codec: str) -> None:
        super()._prepare_receiver(transceiver, video_codec)
        # The decoder thread has not started yet, so the plain tap just
        # installed can still be swapped for one that feeds it.
        self.taps[transceiver.kind] = DecodingTap.install(transceiver.receiver)


def thread_cpu_seconds(native_id: int) -> float:
    """utime + stime of one thread of this process so far."""
    text = Path(f"/proc/self/task/{native_id}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class SinkClock:
    """CPU time the event loop spends inside the sinks it wraps."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, sink: FrameSink) -> FrameSink:
        def timed(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
            started = time.thread_time()
            try:
                sink(codec, frame)
            finally:
                self.seconds += time.thread_time() - started

        return timed


def stream_recorder_attach(directory: Path, published: PublishedStream, clock: SinkClock) -> StreamRecorder:
    """Attached as the media node does (rows aside), with its sinks timed."""
    target = RecordTarget(
        directory=directory, stream_id=published.stream_id, room="bench", room_id="bench",
        participant=published.stream_id, kind="camera",
    )
    return recorder_attach(published, target, wrap_sink=clock.wrap)


async def media_recorder_attach(directory: Path, published: PublishedStream) -> MediaRecorder:
    recorder = MediaRecorder(str(directory / f"{published.stream_id}.{BASELINE_EXTENSION}"))
    for transceiver in published.pc.getTransceivers():
        recorder.addTrack(transceiver.receiver.track)
    await recorder.start()
    return recorder


class RecordingServer:
    def __init__(self, variant: str, codec: str) -> None:
        if variant not in RECORDING_VARIANTS:
            raise ValueError(f"unknown recording variant {variant!r}")
        check_aiortc_internals()
        self.variant = variant
        self.codec = codec
        self.directory = Path(tempfile.mkdtemp(prefix="recording-bench-records-"))
        self.streams: list[PublishedStream] = []
        self.first_media_at: dict[str, float] = {}
        self.recorders: list[StreamRecorder] = []
        self.media_recorders: list[MediaRecorder] = []
        self.sinks = SinkClock()
        self.plays = 0

    async def publish(self, sdp: str) -> str:
        stream_id = f"s{len(self.streams) + 1}"
        kind = DecodedPublishedStream if self.variant == "streams-mediarecorder" else PublishedStream

        def first_media() -> None:
            self.first_media_at.setdefault(stream_id, time.time())

        published, answer = await kind.accept(
            stream_id=stream_id, offer_sdp=sdp, video_codec=self.codec, ice_servers=[], on_first_media=first_media
        )
        self.streams.append(published)
        if self.variant == "streams-recorder":
            self.recorders.append(stream_recorder_attach(self.directory, published, self.sinks))
        elif self.variant == "streams-mediarecorder":
            self.media_recorders.append(await media_recorder_attach(self.directory, published))
        return answer

    async def play(self, sdp: str) -> str:
        if self.plays >= len(self.streams):
            raise RuntimeError("every published stream already has its player")
        published = self.streams[self.plays]
        self.plays += 1
        _, answer = await PlayedStream.accept(
            published=published, offer_sdp=sdp, video_codec=self.codec, ice_servers=[]
        )
        return answer

    def stats(self) -> dict[str, Any]:
        writers = [thread for thread in threading.enumerate() if thread.name.startswith("record-")]
        return {
            "streams": len(self.streams),
            "players": sum(len(published.players) for published in self.streams),
            "records": str(self.directory),
            "first_media_at": [self.first_media_at.get(published.stream_id) for published in self.streams],
            "writer_cpu_s": sum(thread_cpu_seconds(thread.native_id) for thread in writers if thread.native_id),
            "sink_cpu_s": self.sinks.seconds,
        }

    async def close(self) -> None:
        results = await asyncio.gather(*(asyncio.to_thread(recorder.close) for recorder in self.recorders))
        for result in results:
            if result.failure:
                logger.error("record %s: %s", result.path.name, result.failure)
        for media_recorder in self.media_recorders:
            await media_recorder.stop()
        for published in self.streams:
            await published.close()
