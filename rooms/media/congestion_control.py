"""Congestion control of one published video track, on the forwarding path.

Wires ``rooms.media.congestion`` (the decisions) to the node: each
subscriber leg's RTCP feedback goes in (``rooms.media.receiver_feedback``),
and out come REMB to the publisher (through its ``BitrateCap``), bandwidth
pauses of a leg's video (its ``pause("bandwidth")``, audio goes on), and
the leg's ``on_bandwidth(paused)`` callback, which tells its subscriber
(``stream.paused`` / ``stream.resumed``).

A leg is anything with ``pause(reason)`` and ``resume(reason)`` whose
reasons are kept apart (``rooms.media.fanout.ForwardLeg``): a publisher's unmute
never lifts a bandwidth pause, nor a resume here a mute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiortc import RTCRtpSender

from rooms.media.bitrate import BitrateCap
from rooms.media.congestion import Action, CongestionPolicy, TrackCongestion
from rooms.media.receiver_feedback import feedback_watch
from rooms.media.tap import EncodedFrameTap

logger = logging.getLogger(__name__)

TICK_S = 0.25
# The publisher's rate is measured over this window.
SOURCE_WINDOW_S = 1.0

BandwidthCallback = Callable[[bool], None]
BANDWIDTH = "bandwidth"


class VideoLeg(Protocol):
    """One subscriber's forwarding of the video."""

    def pause(self, reason: str) -> None: ...

    def resume(self, reason: str) -> None: ...


@dataclass
class _Leg:
    track: VideoLeg
    on_bandwidth: BandwidthCallback | None


class CongestionControl:
    def __init__(self, cap: BitrateCap, tap: EncodedFrameTap, policy: CongestionPolicy) -> None:
        self.decisions = TrackCongestion(policy)
        self._cap = cap
        self._tap = tap
        # By id(): a leg object is the key, whatever its class makes of equality.
        self._legs: dict[int, _Leg] = {}
        self._task: asyncio.Task[None] | None = None
        # Counts of what was decided, for tests and benchmarks.
        self.pauses = 0
        self.resumes = 0
        self.probes = 0

    @classmethod
    def install(cls, cap: BitrateCap, tap: EncodedFrameTap, policy: CongestionPolicy) -> CongestionControl:
        control = cls(cap, tap, policy)
        control._task = asyncio.get_running_loop().create_task(control._run(), name="congestion-control")
        return control

    def leg_add(self, track: VideoLeg, sender: RTCRtpSender, on_bandwidth: BandwidthCallback | None) -> None:
        """Watch the RTCP of ``sender``, whose track forwards this video to one subscriber."""
        key = id(track)
        self._legs[key] = _Leg(track, on_bandwidth)
        self.decisions.leg_add(key)
        loop = asyncio.get_running_loop()
        feedback_watch(
            sender,
            on_estimate=lambda bps: self.decisions.estimate(key, bps, loop.time()),
            on_loss=lambda fraction: self.decisions.loss(key, fraction, loop.time()),
        )

    def leg_remove(self, track: VideoLeg) -> None:
        self._legs.pop(id(track), None)
        self.decisions.leg_remove(id(track))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        window_start, bytes_start = loop.time(), self._tap.bytes_in
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            if now - window_start >= SOURCE_WINDOW_S:
                self.decisions.source_bps = int((self._tap.bytes_in - bytes_start) * 8 / (now - window_start))
                window_start, bytes_start = now, self._tap.bytes_in
            try:
                for key, action in self.decisions.tick(now):
                    leg = self._legs.get(key) if isinstance(key, int) else None
                    if leg is not None:
                        self._apply(leg, action)
                self._cap.limit(self.decisions.target_bps(now))
            except Exception:
                logger.exception("congestion control failed a tick")

    def _apply(self, leg: _Leg, action: Action) -> None:
        match action:
            case Action.PAUSE | Action.PROBE_FAILED:
                leg.track.pause(BANDWIDTH)
            case Action.PROBE:
                self.probes += 1
                leg.track.resume(BANDWIDTH)
        if action is Action.PAUSE:
            self.pauses += 1
        elif action is Action.RESUME:
            self.resumes += 1
        if leg.on_bandwidth is not None and action in (Action.PAUSE, Action.RESUME):
            try:
                leg.on_bandwidth(action is Action.PAUSE)
            except Exception:
                logger.exception("telling a subscriber of a bandwidth pause failed")

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
