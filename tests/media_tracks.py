"""Synthetic media with known content: the tests use the load test's tracks
(``loadtest.media``), which runtime code may import where it may not import
``tests``."""

from __future__ import annotations

import math
import time

import av

from loadtest.media import (
    BITS,
    SQUARE,
    VIDEO_PTIME,
    BeepAudioTrack,
    CounterVideoTrack,
    FlashVideoTrack,
    NoiseVideoTrack,
    PacedAudioTrack,
    PacedVideoTrack,
    ToneAudioTrack,
    audio_energy,
    counter_frame,
    mean_luma,
    read_counter,
    write_plane,
)


class TurnsAudioTrack(PacedAudioTrack):
    """Speaking in turns: a 440 Hz tone (12000 peak, -12 dBov) during the
    turns of ``phase`` (0 or 1), counted in ``turn`` seconds from ``epoch``
    (a time.monotonic instant), silence during the other's."""

    def __init__(self, epoch: float, phase: int, turn: float = 1.0) -> None:
        super().__init__()
        self.epoch = epoch
        self.phase = phase
        self.turn = turn

    def sample_values(self, first: int) -> list[int]:
        if int((time.monotonic() - self.epoch) // self.turn) % 2 != self.phase:
            return [0] * self.samples
        return [int(12_000 * math.sin(2 * math.pi * 440 * (first + i) / self.rate)) for i in range(self.samples)]


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
    "TurnsAudioTrack",
    "audio_energy",
    "counter_frame",
    "mean_luma",
    "read_counter",
    "write_plane",
]


class NoisyCounterVideoTrack(PacedVideoTrack):
    """The counter of ``CounterVideoTrack`` over faint grain, so the encoder
    spends the bitrate it is given (as ``NoiseVideoTrack`` does) and the
    player can still tell each frame's number."""

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, amplitude: int = 32,
                 distinct: int = 8) -> None:
        super().__init__(width, height, fps)
        import random

        rng = random.Random(17)
        low = 128 - amplitude // 2
        self._lumas = [bytes(low + rng.randrange(amplitude) for _ in range(width * height)) for _ in range(distinct)]

    def picture(self, number: int) -> av.VideoFrame:
        frame = counter_frame(number, self.width, self.height)
        luma = bytearray(self._lumas[number % len(self._lumas)])
        # The counter's squares (the top SQUARE rows) over the grain.
        counter = bytes(frame.planes[0])
        stride = frame.planes[0].line_size
        for row in range(SQUARE):
            luma[row * self.width:(row + 1) * self.width] = counter[row * stride:row * stride + self.width]
        write_plane(frame.planes[0], luma, self.width, self.height)
        return frame
