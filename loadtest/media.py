"""Synthetic media with known content, and readers for it: what the load
test publishes, and what the tests publish and read back.

The video carries its frame number as 16 black/white squares across the
top of the picture, big enough to survive VP8 and H.264 at low bitrates;
the audio is a 440 Hz tone.
"""

from __future__ import annotations

import fractions
import math
import time

import av
from aiortc.mediastreams import AUDIO_PTIME, VIDEO_CLOCK_RATE, VIDEO_PTIME, MediaStreamTrack

BITS = 16
SQUARE = 40


class PacedVideoTrack(MediaStreamTrack):
    """A video track that paces its frames in real time, like a camera."""

    kind = "video"

    def __init__(self, width: int, height: int, fps: int) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.count = 0
        self._start: float | None = None

    def picture(self, number: int) -> av.VideoFrame:
        raise NotImplementedError

    async def recv(self) -> av.VideoFrame:
        import asyncio

        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self.count / self.fps
        await asyncio.sleep(max(0.0, target - time.monotonic()))
        frame = self.picture(self.count)
        frame.pts = int(self.count * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self.count += 1
        return frame


class CounterVideoTrack(PacedVideoTrack):
    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, shade: int = 128) -> None:
        super().__init__(width, height, fps)
        self.shade = shade

    def picture(self, number: int) -> av.VideoFrame:
        return counter_frame(number, self.width, self.height, self.shade)


def counter_frame(number: int, width: int, height: int, shade: int = 128) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    luma = bytearray([shade]) * (width * height)
    for bit in range(BITS):
        value = 255 if number >> bit & 1 else 0
        for row in range(SQUARE):
            start = row * width + bit * SQUARE
            luma[start : start + SQUARE] = bytes([value]) * SQUARE
    write_plane(frame.planes[0], luma, width, height)
    for plane in frame.planes[1:]:
        plane.update(bytes([128]) * (plane.line_size * plane.height))
    return frame


def write_plane(plane: av.video.plane.VideoPlane, pixels: bytearray, width: int, height: int) -> None:
    stride = plane.line_size
    if stride == width:
        plane.update(bytes(pixels))
        return
    padded = bytearray(stride * height)
    for row in range(height):
        padded[row * stride : row * stride + width] = pixels[row * width : (row + 1) * width]
    plane.update(bytes(padded))


def read_counter(frame: av.VideoFrame) -> int:
    """The number a CounterVideoTrack drew, read from the decoded picture."""
    gray = frame.reformat(format="gray")
    plane = gray.planes[0]
    data = bytes(plane)
    stride = plane.line_size
    number = 0
    middle = SQUARE // 2
    for bit in range(BITS):
        if data[middle * stride + bit * SQUARE + middle] > 128:
            number |= 1 << bit
    return number


def mean_luma(frame: av.VideoFrame) -> float:
    gray = frame.reformat(format="gray")
    data = bytes(gray.planes[0])
    return sum(data[:: 97]) / len(data[:: 97])


class NoiseVideoTrack(PacedVideoTrack):
    """Grain on grey, never the same twice in a row: whatever bitrate the
    encoder is given (aiortc's VP8: 250 kbit/s to 1.5 Mbit/s), it spends,
    where a flat picture would need almost none. The grain is faint
    (``amplitude`` levels) so that VP8 can meet its target at all: full-range
    noise takes ~3.6 Mbit/s at its coarsest quantizer, whatever it is told."""

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30, amplitude: int = 32,
                 distinct: int = 16) -> None:
        super().__init__(width, height, fps)
        import random

        rng = random.Random(13)
        low = 128 - amplitude // 2
        self._lumas = [bytes(low + rng.randrange(amplitude) for _ in range(width * height)) for _ in range(distinct)]

    def picture(self, number: int) -> av.VideoFrame:
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        write_plane(frame.planes[0], bytearray(self._lumas[number % len(self._lumas)]), self.width, self.height)
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * (plane.line_size * plane.height))
        return frame


class PacedAudioTrack(MediaStreamTrack):
    """A mono s16 audio track that paces its 20 ms frames in real time."""

    kind = "audio"

    def __init__(self, rate: int = 48_000) -> None:
        super().__init__()
        self.rate = rate
        self.samples = int(AUDIO_PTIME * rate)
        self.sent = 0
        self._start: float | None = None

    def sample_values(self, first: int) -> list[int]:
        raise NotImplementedError

    async def recv(self) -> av.AudioFrame:
        import asyncio

        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self.sent / self.rate
        await asyncio.sleep(max(0.0, target - time.monotonic()))
        values = self.sample_values(self.sent)
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.samples)
        frame.planes[0].update(b"".join(v.to_bytes(2, "little", signed=True) for v in values))
        frame.sample_rate = self.rate
        frame.pts = self.sent
        frame.time_base = fractions.Fraction(1, self.rate)
        self.sent += self.samples
        return frame


class ToneAudioTrack(PacedAudioTrack):
    def __init__(self, frequency: float = 440.0, rate: int = 48_000) -> None:
        super().__init__(rate)
        self.frequency = frequency

    def sample_values(self, first: int) -> list[int]:
        return [
            int(12_000 * math.sin(2 * math.pi * self.frequency * (first + i) / self.rate))
            for i in range(self.samples)
        ]


def audio_energy(frame: av.AudioFrame) -> float:
    """Mean absolute sample value of an s16 frame (a 440 Hz tone at 12000 peak gives ~7600)."""
    if frame.format.name != "s16":
        raise ValueError(f"expected s16 audio, got {frame.format.name}")
    count = frame.samples * len(frame.layout.channels)
    data = bytes(frame.planes[0])[: count * 2]
    samples = [int.from_bytes(data[i : i + 2], "little", signed=True) for i in range(0, len(data), 2)]
    return sum(abs(s) for s in samples) / max(1, len(samples))


class FlashVideoTrack(PacedVideoTrack):
    """Dark frames, white for the frames captured in the first 100 ms of
    every wall-clock second: with ``BeepAudioTrack`` a sync mark whose
    audio and video are known to happen at the same instant."""

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30) -> None:
        super().__init__(width, height, fps)

    def picture(self, number: int) -> av.VideoFrame:
        white = time.time() % 1.0 < 0.1
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane, value in zip(frame.planes, (235 if white else 30, 128, 128), strict=True):
            plane.update(bytes([value]) * (plane.line_size * plane.height))
        return frame


class BeepAudioTrack(PacedAudioTrack):
    """Silence, and a 1 kHz beep for the samples in the first 100 ms of every wall-clock second."""

    def sample_values(self, first: int) -> list[int]:
        now = time.time()
        values = []
        for i in range(self.samples):
            at = now + i / self.rate
            values.append(int(16_000 * math.sin(2 * math.pi * 1000 * at)) if at % 1.0 < 0.1 else 0)
        return values


__all__ = [
    "BITS",
    "SQUARE",
    "VIDEO_PTIME",
    "BeepAudioTrack",
    "CounterVideoTrack",
    "FlashVideoTrack",
    "NoiseVideoTrack",
    "PacedAudioTrack",
    "PacedVideoTrack",
    "ToneAudioTrack",
    "audio_energy",
    "counter_frame",
    "mean_luma",
    "read_counter",
    "write_plane",
]
