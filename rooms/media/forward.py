"""``ForwardTrack``: one subscriber's copy of a published track.

aiortc's ``RTCRtpSender`` packetizes without encoding when a track's
``recv()`` returns an ``av.Packet``; this track returns the publisher's
encoded frames as packets, so forwarding never decodes nor encodes.
"""

from __future__ import annotations

import asyncio
import fractions
import functools
import logging
from collections.abc import Callable
from typing import Any

import av
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from rooms.media.keyframes import is_keyframe

logger = logging.getLogger(__name__)

# A subscriber this far behind is skipped forward rather than served ever
# older media: video to the next keyframe (3 s at 30 fps), audio by dropping
# its oldest packets (0.5 s of 20 ms packets).
MAX_QUEUED_VIDEO_FRAMES = 90
MAX_QUEUED_AUDIO_FRAMES = 25

# Why a track is paused: its publisher muted it (media.mute), or the
# subscriber's link cannot carry it (rooms.media.congestion_control). Each
# reason is lifted on its own, so an unmute never undoes a bandwidth pause.
MUTE = "mute"
BANDWIDTH = "bandwidth"


@functools.cache
def _time_base(clock_rate: int) -> fractions.Fraction:
    return fractions.Fraction(1, clock_rate)


class ForwardTrack(MediaStreamTrack):
    def __init__(
        self,
        kind: str,
        *,
        request_keyframe: Callable[[], None],
        on_first_frame: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self._queue: asyncio.Queue[av.Packet[Any] | None] = asyncio.Queue()
        self._request_keyframe = request_keyframe
        self._on_first_frame = on_first_frame
        # Video waits for a keyframe: nothing before it can be decoded.
        self._waiting_for_keyframe = kind == "video"
        self.paused_by: set[str] = set()
        self.frames_sent = 0
        # Read by the node's meter once per heartbeat (rooms.media.metering).
        self.frames_dropped = 0

    def push(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        """Queue a publisher's frame for this subscriber (tap sink)."""
        if self.readyState != "live" or self.paused:
            return
        if self._waiting_for_keyframe:
            if not is_keyframe(codec.name, frame.data):
                return
            self._waiting_for_keyframe = False
        if self.kind == "video" and self._queue.qsize() >= MAX_QUEUED_VIDEO_FRAMES:
            self.frames_dropped += self._queue.qsize()
            self._drain()
            self._waiting_for_keyframe = True
            self._request_keyframe()
            return
        if self.kind == "audio" and self._queue.qsize() >= MAX_QUEUED_AUDIO_FRAMES:
            self._queue.get_nowait()
            self.frames_dropped += 1
        # Each player gets its own packet: packing sets its pts.
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = _time_base(codec.clockRate)
        self._queue.put_nowait(packet)

    def queued(self) -> int:
        """Frames waiting for this subscriber's sender (read once per heartbeat)."""
        return self._queue.qsize()

    @property
    def paused(self) -> bool:
        return bool(self.paused_by)

    def resume(self, reason: str = MUTE) -> None:
        """Lift the pause of ``reason``; with none left, video restarts at a fresh keyframe."""
        if reason not in self.paused_by:
            return
        self.paused_by.discard(reason)
        if not self.paused_by and self.kind == "video":
            self._waiting_for_keyframe = True
            self._request_keyframe()

    def pause(self, reason: str = MUTE) -> None:
        self.paused_by.add(reason)
        self._drain()

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    async def recv(self) -> av.Packet[Any]:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        if self.frames_sent == 0 and self._on_first_frame is not None:
            self._on_first_frame()
        self.frames_sent += 1
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            self._queue.put_nowait(None)
        super().stop()
