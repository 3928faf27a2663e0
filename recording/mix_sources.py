"""Decoded media of one stream record, on the room timeline, for the mixer.

Video is decoded on a thread per record (PyAV releases the GIL while
decoding and scaling), each frame scaled right there to the size its tile
has at that moment, so the compositor only copies planes. Audio is cheap to
decode and is read on demand, in its own demuxer so neither track waits for
the other however the file interleaves them.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from recording.mix_layout import Rect, fit_rect

logger = logging.getLogger(__name__)

MIX_SAMPLE_RATE = 48000
# Decoded frames waiting per record: enough to ride out scheduling hiccups,
# small enough that a 16-tile room holds little memory.
VIDEO_QUEUE_FRAMES = 6
# A decoded audio frame this close to where the previous one ended continues
# it: millisecond timestamps must not open gaps or overlaps of a few samples.
AUDIO_CONTINUITY_S = 0.010

UInt8Plane = np.ndarray[Any, np.dtype[np.uint8]]
FloatSamples = np.ndarray[Any, np.dtype[np.float32]]


@dataclass
class TileFrame:
    """A decoded picture at its time on the room timeline, scaled for a tile of its moment."""

    time_ms: float
    source: Any  # the decoded av.VideoFrame, kept to scale again if the tile changed size
    picture: Any  # yuv420p av.VideoFrame of the tile's size
    planes: tuple[UInt8Plane, UInt8Plane, UInt8Plane]

    @classmethod
    def scaled(cls, time_ms: float, source: Any, rect: Rect) -> TileFrame:
        picture = source.reformat(width=rect.width, height=rect.height, format="yuv420p")
        return cls(time_ms, source, picture, frame_planes(picture))

    def fitted(self, cell: Rect) -> TileFrame:
        rect = fit_rect((self.source.width, self.source.height), cell)
        if (rect.width, rect.height) == (self.picture.width, self.picture.height):
            return self
        return TileFrame.scaled(self.time_ms, self.source, rect)


def frame_planes(frame: Any) -> tuple[UInt8Plane, UInt8Plane, UInt8Plane]:
    """Writable numpy views of a yuv420p frame's planes, without their row padding."""
    views = []
    for plane in frame.planes:
        rows = np.frombuffer(plane, dtype=np.uint8, count=plane.line_size * plane.height)
        views.append(rows.reshape(plane.height, plane.line_size)[:, : plane.width])
    return views[0], views[1], views[2]


def video_picture_size(path: Path) -> tuple[int, int] | None:
    """The size of a record's first decodable picture, or None if it has none."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            return None
        for frame in _decoded(container, container.streams.video[0]):
            return int(frame.width), int(frame.height)
    return None


def media_end_s(path: Path) -> float:
    """Where the last packet of any track ends in the file (for records whose end was not written)."""
    end = 0.0
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return end


class VideoSource:
    """One record's video, decoded ahead on a thread; `frame_at` walks it forward in time."""

    def __init__(self, path: Path, origin_ms: float, cell_at: Callable[[float], Rect | None]) -> None:
        self.path = path
        self.origin_ms = origin_ms  # room time of the file's t=0
        self.cell_at = cell_at
        self._frames: queue.Queue[TileFrame | None] = queue.Queue(VIDEO_QUEUE_FRAMES)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, name=f"mix-decode-{path.stem}", daemon=True)
        self._current: TileFrame | None = None
        self._next: TileFrame | None = None
        self._ended = False
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is None:
            return  # never started
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # unblock a decoder waiting on a full queue
                self._frames.get(timeout=0.05)
        self._thread.join()

    def frame_at(self, time_ms: float) -> TileFrame | None:
        """The latest frame due at `time_ms` (held until the next one is due), or None before the first."""
        while not self._ended:
            if self._next is None:
                self._next = self._frames.get()
                if self._next is None:
                    self._ended = True
                    if self.error is not None:
                        raise self.error
                    break
            if self._next.time_ms > time_ms:
                break
            self._current, self._next = self._next, None
        return self._current

    def _decode(self) -> None:
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in _decoded(container, stream):
                    if self._stop.is_set():
                        return
                    time_ms = self.origin_ms + float(frame.time or 0.0) * 1000
                    cell = self.cell_at(time_ms)
                    if cell is None:
                        continue  # outside the record's live span: never shown
                    tile = TileFrame.scaled(time_ms, frame, fit_rect((frame.width, frame.height), cell))
                    if not self._put(tile):
                        return
        except BaseException as error:  # handed to the consumer: a thread must not fail silently
            self.error = error
        finally:
            self._put(None)

    def _put(self, item: TileFrame | None) -> bool:
        while not self._stop.is_set():
            try:
                self._frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


class AudioSource:
    """One record's audio as 48 kHz stereo float samples, addressed by room sample index."""

    def __init__(self, path: Path, origin_samples: int) -> None:
        self.origin = origin_samples  # room sample index of the file's t=0, A/V correction included
        self._container: Any = av.open(str(path))
        stream = self._container.streams.audio[0]
        self._frames: Iterator[Any] = _decoded(self._container, stream)
        self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=MIX_SAMPLE_RATE)
        self._buffer = np.zeros((2, 0), dtype=np.float32)
        self._buffer_start = origin_samples  # room sample index of _buffer[:, 0]
        self._decoded_end: int | None = None  # room sample index where the last decoded frame ended
        self._ended = False

    def close(self) -> None:
        self._container.close()

    def read(self, start: int, count: int) -> FloatSamples:
        """Samples [start, start + count) of the room timeline: silence where the record has none."""
        while not self._ended and self._buffer_start + self._buffer.shape[1] < start + count:
            self._decode_more()
        out = np.zeros((2, count), dtype=np.float32)
        first = max(start, self._buffer_start)
        last = min(start + count, self._buffer_start + self._buffer.shape[1])
        if last > first:
            buffered = self._buffer[:, first - self._buffer_start : last - self._buffer_start]
            out[:, first - start : last - start] = buffered
        # Nothing before `start + count` is asked for again.
        drop = max(0, min(start + count - self._buffer_start, self._buffer.shape[1]))
        self._buffer = self._buffer[:, drop:]
        self._buffer_start += drop
        return out

    def _decode_more(self) -> None:
        frame = next(self._frames, None)
        if frame is None:
            self._ended = True
            return
        position = self.origin + round(float(frame.time or 0.0) * MIX_SAMPLE_RATE)
        for resampled in self._resampler.resample(frame):
            self._append(position, resampled.to_ndarray().astype(np.float32, copy=False))
            position += resampled.samples

    def _append(self, position: int, samples: FloatSamples) -> None:
        if self._decoded_end is not None and abs(position - self._decoded_end) <= AUDIO_CONTINUITY_S * MIX_SAMPLE_RATE:
            position = self._decoded_end
        self._decoded_end = position + samples.shape[1]
        buffer_end = self._buffer_start + self._buffer.shape[1]
        if position < buffer_end:  # overlaps what is buffered (or already read): keep the older samples
            samples = samples[:, buffer_end - position :]
            position = buffer_end
        if samples.shape[1] == 0:
            return
        if self._buffer.shape[1] == 0:
            self._buffer, self._buffer_start = samples, position
            return
        gap = np.zeros((2, position - buffer_end), dtype=np.float32)
        self._buffer = np.concatenate([self._buffer, gap, samples], axis=1)


def _decoded(container: Any, stream: Any) -> Iterator[Any]:
    """Decoded frames of one stream; a corrupt packet (lost RTP in the capture) is skipped, not fatal."""
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            logger.debug("skipped an undecodable %s packet in %s", stream.type, container.name)
