"""One fan-out per published track: packetize each frame once, send it to every leg.

``TrackFanout`` is a sink of the publisher's tap (``rooms.media.tap``). For
each encoded frame it cuts the RTP payloads once (aiortc's own packetizers,
so what players reassemble is the publisher's frame byte for byte), reads
the clock once, and hands payloads, timestamp and send time to each
``ForwardLeg``; the leg's ``RtpLeg`` writes only what differs per
subscriber (SSRC, sequence number, timestamp, payload type), protects and
sends the frame's packets together. No coroutine, queue or wake-up per
subscriber: a frame costs each leg one call and, on Linux, one system call.

Video legs start at a keyframe. The fan-out keeps the frames since the
publisher's last keyframe (a short run of them), so a leg that comes up
gets that keyframe and what followed at once, instead of waiting for the
publisher to answer a keyframe request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender, clock
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from rooms.media.keyframes import is_keyframe
from rooms.media.rtp_leg import ExtensionCache, FeedbackWatcher, RtpLeg, abs_send_time

logger = logging.getLogger(__name__)

# Frames kept since the last keyframe for legs that come up: 0.5 s at 30 fps.
# A longer run would show a joining player stale video; past it a joining
# leg waits for a fresh keyframe.
KEYFRAME_RUN_FRAMES = 15
KEYFRAME_RUN_BYTES = 2_000_000
# A leg asked for at a moment when the kept run is this long asks the
# publisher for a fresh keyframe, so the run is short when the leg comes up.
FRESH_RUN_FRAMES = 5

MUTE = "mute"

# (payloads, the frame's timestamp) of one frame.
Packetized = tuple[list[bytes], int]


class TrackFanout:
    """Sends one published track's frames to its subscriber legs."""

    def __init__(self, kind: str, request_keyframe: Callable[[bool], None]) -> None:
        self.kind = kind
        self._request_keyframe = request_keyframe
        self.legs: list[ForwardLeg] = []
        self._picture_id = 0
        # Frames since the last keyframe (video), None when that run grew too long.
        self._run: list[Packetized] | None = None
        self._run_bytes = 0

    def leg_add(self, sender: RTCRtpSender, on_first_frame: Callable[[], None] | None = None) -> ForwardLeg:
        leg = ForwardLeg(self, sender, on_first_frame)
        self.legs.append(leg)
        if self.kind == "video" and (self._run is None or len(self._run) > FRESH_RUN_FRAMES):
            self._request_keyframe(True)
        return leg

    def leg_remove(self, leg: ForwardLeg) -> None:
        if leg in self.legs:
            self.legs.remove(leg)

    # --- the tap's sink -----------------------------------------------------------------

    def push(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        data = frame.data
        if self.kind != "video":
            if self.legs:
                self._send(([data], frame.timestamp), None)
            return
        keyframe = is_keyframe(codec.name, data)
        packetized = (self._packetize(codec.name, data), frame.timestamp)
        if keyframe:
            self._run, self._run_bytes = [packetized], len(data)
        elif self._run is not None:
            self._run.append(packetized)
            self._run_bytes += len(data)
            if len(self._run) > KEYFRAME_RUN_FRAMES or self._run_bytes > KEYFRAME_RUN_BYTES:
                self._run = None
        if self.legs:
            self._send(packetized, keyframe)

    def _packetize(self, codec_name: str, data: bytes) -> list[bytes]:
        name = codec_name.upper()
        if name == "VP8":
            payloads = Vp8Encoder._packetize(data, self._picture_id)
            self._picture_id = (self._picture_id + 1) & 0x7FFF
            return payloads
        if name == "H264":
            return H264Encoder._packetize(H264Encoder._split_bitstream(data))
        return [data]

    def _send(self, packetized: Packetized, keyframe: bool | None) -> None:
        ntp_time = clock.current_ntp_time()
        send_time = abs_send_time(ntp_time)
        extensions: ExtensionCache = {}
        payloads, timestamp = packetized
        for leg in self.legs:
            if leg.paused_by or not leg.rtp.ready:
                continue
            if leg.waiting_for_keyframe:
                if not keyframe:
                    continue
                leg.waiting_for_keyframe = False
            leg.frame_send(payloads, timestamp, send_time, ntp_time, extensions)

    # --- legs coming up -----------------------------------------------------------------

    def leg_start(self, leg: ForwardLeg) -> None:
        """A leg can send (its transport is up) or resumes: start it at a keyframe."""
        if self.kind != "video":
            return
        leg.waiting_for_keyframe = True
        run = self._run
        if run is None:
            self._request_keyframe(True)
            return
        ntp_time = clock.current_ntp_time()
        send_time = abs_send_time(ntp_time)
        extensions: ExtensionCache = {}
        leg.waiting_for_keyframe = False
        for payloads, timestamp in run:
            leg.frame_send(payloads, timestamp, send_time, ntp_time, extensions)


class ForwardLeg:
    """One subscriber's copy of a published track."""

    def __init__(self, fanout: TrackFanout, sender: RTCRtpSender, on_first_frame: Callable[[], None] | None) -> None:
        self.kind = fanout.kind
        self._fanout = fanout
        self._on_first_frame = on_first_frame
        self.rtp = RtpLeg(sender, self._ready)
        # Video waits for a keyframe: nothing before it can be decoded.
        self.waiting_for_keyframe = fanout.kind == "video"
        # Why the leg is paused (mute, bandwidth, ...): it sends nothing while any holds.
        self.paused_by: set[str] = set()
        self.frames_sent = 0
        # Frames the leg could not send (read by the node's meter once per heartbeat).
        self.frames_dropped = 0

    @property
    def paused(self) -> bool:
        return bool(self.paused_by)

    def pause(self, reason: str = MUTE) -> None:
        self.paused_by.add(reason)

    def resume(self, reason: str = MUTE) -> None:
        """Drop one reason to pause; with none left, video restarts at a keyframe."""
        if reason not in self.paused_by:
            return
        self.paused_by.discard(reason)
        if not self.paused_by and self.rtp.ready:
            self._fanout.leg_start(self)

    def feedback_watch(self, watcher: FeedbackWatcher) -> None:
        """Call ``watcher`` with each RTCP packet the subscriber sends on this leg (REMB, reports)."""
        self.rtp.feedback_watch(watcher)

    def waiting(self) -> bool:
        """Whether the leg forwards nothing yet though unpaused: its connection is not up,
        or its video waits for a keyframe (read once per heartbeat)."""
        return not self.paused_by and (not self.rtp.ready or self.waiting_for_keyframe)

    def frame_send(self, payloads: list[bytes], timestamp: int, send_time: int, ntp_time: int,
                   extensions: ExtensionCache) -> None:
        if not self.rtp.send_frame(payloads, timestamp, send_time, ntp_time, extensions):
            self.frames_dropped += 1
            return
        self.frames_sent += 1
        if self.frames_sent == 1 and self._on_first_frame is not None:
            try:
                self._on_first_frame()
            except Exception:
                logger.exception("a first-frame callback failed")

    def _ready(self, rtp: Any) -> None:
        if not self.paused_by:
            self._fanout.leg_start(self)

    def stop(self) -> None:
        self._fanout.leg_remove(self)
        self.rtp.close()
