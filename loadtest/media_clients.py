"""The load test's peer connections: publishers send generated camera
video and a tone, subscribers count what arrives without decoding it.

Counting encoded frames (the tap the media node itself uses) keeps the
load generator's CPU for the clients it simulates: a decoder per
subscriber would make the generator, not the server, the bottleneck.
Loss is read from the frames' RTP timestamps: a paced source stamps frame
n with n times a fixed step, so every step missing between two received
frames is a frame that never came.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from loadtest.media import CounterVideoTrack, ToneAudioTrack
from loadtest.report import SubscriptionResult, frames_expected
from rooms.media.tap import EncodedFrameTap

VIDEO_CLOCK = 90_000
# aiortc's Opus: 20 ms frames on a 48 kHz RTP clock.
AUDIO_STEP = 960


def peer_connection(ice_servers: list[dict[str, Any]]) -> RTCPeerConnection:
    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
               for s in ice_servers]
    # An empty list, not aiortc's default (a public STUN server).
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))


async def publisher_offer(ice_servers: list[dict[str, Any]], *, width: int, height: int, fps: int, audio: bool,
                          codec: str) -> tuple[RTCPeerConnection, str]:
    pc = peer_connection(ice_servers)
    video = pc.addTransceiver(CounterVideoTrack(width, height, fps), direction="sendonly")
    if codec == "H264":
        video.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
        )
    if audio:
        pc.addTransceiver(ToneAudioTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


@dataclass
class FrameCounter:
    frames: int = 0
    first_at: float | None = None
    first_timestamp: int | None = None
    last_timestamp: int = 0

    def add(self, timestamp: int, at: float) -> None:
        if self.first_at is None:
            self.first_at = at
            self.first_timestamp = timestamp
        self.frames += 1
        self.last_timestamp = max(self.last_timestamp, timestamp)

    def expected(self, step: float) -> int:
        if self.first_timestamp is None:
            return 0
        return frames_expected(self.first_timestamp, self.last_timestamp, step)


@dataclass(eq=False)
class Subscription:
    """One stream played by one subscriber."""

    room: str
    subscriber: str
    publisher: str
    stream: str
    pc: RTCPeerConnection
    requested_at: float = field(default_factory=time.monotonic)
    video: FrameCounter = field(default_factory=FrameCounter)
    audio: FrameCounter = field(default_factory=FrameCounter)
    window_from: tuple[float, int] | None = None
    window_to: tuple[float, int] | None = None

    @classmethod
    async def offer(cls, ice_servers: list[dict[str, Any]], *, room: str, subscriber: str, publisher: str,
                    stream: str) -> tuple[Subscription, str]:
        pc = peer_connection(ice_servers)
        subscription = cls(room, subscriber, publisher, stream, pc)
        video = pc.addTransceiver("video", direction="recvonly")
        EncodedFrameTap.install(video.receiver).add_sink(subscription._on_video)
        audio = pc.addTransceiver("audio", direction="recvonly")
        EncodedFrameTap.install(audio.receiver).add_sink(subscription._on_audio)
        await pc.setLocalDescription(await pc.createOffer())
        subscription.requested_at = time.monotonic()
        return subscription, pc.localDescription.sdp

    def _on_video(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        if codec.name != "rtx":
            self.video.add(frame.timestamp, time.monotonic())

    def _on_audio(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        self.audio.add(frame.timestamp, time.monotonic())

    def window_start(self, at: float) -> None:
        self.window_from = (at, self.video.frames)

    def window_end(self, at: float) -> None:
        self.window_to = (at, self.video.frames)

    async def rtp_packets(self) -> tuple[int, int]:
        """(received, lost) RTP packets of both receivers, from the sequence numbers."""
        received = lost = 0
        for receiver in self.pc.getReceivers():
            for stats in (await receiver.getStats()).values():
                if getattr(stats, "type", "") == "inbound-rtp":
                    received += stats.packetsReceived
                    lost += max(0, stats.packetsLost)
        return received, lost

    async def result(self, fps: int) -> SubscriptionResult:
        result = SubscriptionResult(self.room, self.subscriber, self.publisher, self.stream)
        if self.video.first_at is not None:
            result.first_frame_ms = round((self.video.first_at - self.requested_at) * 1000, 1)
        result.frames = self.video.frames
        result.frames_expected = self.video.expected(VIDEO_CLOCK / fps)
        result.audio_frames = self.audio.frames
        result.audio_expected = self.audio.expected(AUDIO_STEP)
        if self.window_from and self.window_to and self.video.first_at is not None:
            (start, frames_before), (end, frames_after) = self.window_from, self.window_to
            if frames_before == 0:  # its first frame came during the window
                start = max(start, self.video.first_at)
            result.window_frames = frames_after - frames_before
            result.window_s = round(max(0.0, end - start), 3)
        result.packets_received, result.packets_lost = await self.rtp_packets()
        return result
