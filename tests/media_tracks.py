"""Synthetic media with known content: the tests use the load test's tracks
(``loadtest.media``), which runtime code may import where it may not import
``tests``."""

from __future__ import annotations

import math
import time

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
