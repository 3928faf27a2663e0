"""The load side of ``tests/bench/capacity.py``: participants that cost the
load generator as little as possible, so the media node is what saturates.

- A publisher does not encode: ``PrecodedVideoTrack`` replays a loop of VP8
  frames encoded once per process (640x480, about 1 Mbit/s, a keyframe
  every second), which aiortc's sender only packetizes.
- A player does not decode, reassemble nor jitter-buffer: ``FrameCounter``
  replaces its video receiver's packet handler (after SRTP, before the
  jitter buffer) with a counter of RTP marker bits per frame timestamp. A
  paced source stamps frame n with n x 3000 (90 kHz at 30 fps), so a jump
  of the timestamp by more than one step is a frame that never came.
- Signaling is the load test's WebSocket client (``loadtest.signaling``):
  one session per participant, every participant in one event loop.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import VIDEO_CLOCK_RATE, MediaStreamTrack
from aiortc.rtp import RtpPacket

from loadtest.signaling import SignalingClient, SignalingError
from tests.bench.sfu_driver import FPS, HEIGHT, WIDTH, TexturedVideoTrack, check_loopback, peer_connection

STEP = VIDEO_CLOCK_RATE // FPS
LOOP_FRAMES = 2 * FPS
REQUEST_TIMEOUT_S = 20.0
PUBLISH_TIMEOUT_S = 20.0


def encode_loop(bitrate: int = 1_000_000, frames: int = LOOP_FRAMES) -> list[tuple[bytes, bool]]:
    """``frames`` VP8 frames of ``TexturedVideoTrack`` (payload, keyframe), a keyframe every ``FPS``."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.bit_rate = bitrate
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.time_base = fractions.Fraction(1, FPS)
    codec.gop_size = FPS
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    source = TexturedVideoTrack()
    packets: list[tuple[bytes, bool]] = []
    for number in range(frames):
        frame = source.picture(number)
        frame.pts = number
        frame.time_base = codec.time_base
        packets += [(bytes(packet), bool(packet.is_keyframe)) for packet in codec.encode(frame)]
    packets += [(bytes(packet), bool(packet.is_keyframe)) for packet in codec.encode(None)]
    if len(packets) != frames or not packets[0][1]:
        raise RuntimeError(f"the VP8 loop: {len(packets)} packets for {frames} frames, first keyframe {packets[0][1]}")
    return packets


class PrecodedVideoTrack(MediaStreamTrack):
    """A camera whose frames are already VP8: the loop of ``encode_loop``, paced at ``FPS``."""

    kind = "video"

    def __init__(self, loop: list[tuple[bytes, bool]]) -> None:
        super().__init__()
        self._loop = loop
        self._count = 0  # frames sent so far
        self._start: float | None = None

    @property
    def sent(self) -> int:
        return self._count

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._count / FPS
        await asyncio.sleep(max(0.0, target - time.monotonic()))
        packet = av.Packet(self._loop[self._count % len(self._loop)][0])
        packet.pts = self._count * STEP
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self._count += 1
        return packet


@dataclass(eq=False)
class FrameCounter:
    """One played stream's frames, counted from the RTP marker bits."""

    frames: int = 0
    lost: int = 0
    first_at: float | None = None
    _last_timestamp: int | None = None

    def on_packet(self, packet: RtpPacket) -> None:
        if not packet.marker:
            return
        if self._last_timestamp is None:
            self.first_at = time.monotonic()
            self.frames = 1
            self._last_timestamp = packet.timestamp
            return
        ahead = (packet.timestamp - self._last_timestamp) % (1 << 32)
        if 0 < ahead < 1 << 31:  # a later frame (a repeat or a late one is not counted)
            self.frames += 1
            self.lost += max(0, round(ahead / STEP) - 1)
            self._last_timestamp = packet.timestamp


def count_frames(receiver: RTCRtpReceiver, counter: FrameCounter) -> None:
    """Replace the receiver's packet handler: count frames, decode and buffer nothing."""
    video_types: set[int] = set()

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        if not video_types:
            codecs = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
            video_types.update(pt for pt, codec in codecs.items() if codec.name.lower() == "vp8")
        if packet.payload_type in video_types:
            counter.on_packet(packet)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]


@dataclass(eq=False)
class Participant:
    """One session: it may publish one camera and play any number of streams."""

    name: str
    room: str
    client: SignalingClient
    pcs: list[RTCPeerConnection] = field(default_factory=list)
    plays: list[FrameCounter] = field(default_factory=list)
    stream: str = ""
    camera: PrecodedVideoTrack | None = None
    _status: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    async def joined(cls, url: str, origin: str, name: str, room: str) -> Participant:
        participant: Participant
        client = await SignalingClient.open(url, origin, lambda frame: participant._on_event(frame))
        participant = cls(name, room, client)
        reply = await client.request("session.connect", REQUEST_TIMEOUT_S, username=name)
        if reply.get("status") != "ESTABLISHED":
            raise SignalingError("session_failed", str(reply)[:300])
        state = await client.request("room.join", REQUEST_TIMEOUT_S, room=room)
        if state.get("type") != "room.state":
            raise SignalingError("join_failed", str(state)[:300])
        return participant

    def _on_event(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "stream.status":
            waiter = self._status.get(str(frame.get("stream")))
            if waiter is not None and not waiter.done():
                waiter.set_result(frame)

    async def publish(self, loop: list[tuple[bytes, bool]]) -> str:
        pc = peer_connection()
        self.pcs.append(pc)
        self.camera = PrecodedVideoTrack(loop)
        pc.addTransceiver(self.camera, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        check_loopback(pc.localDescription.sdp, "publisher offer")
        answer = await self.client.request("stream.publish", REQUEST_TIMEOUT_S, room=self.room, kind="camera",
                                           sdp=pc.localDescription.sdp)
        if answer.get("type") != "stream.answer":
            raise SignalingError("publish_failed", str(answer)[:300])
        self.stream = str(answer["stream"]["id"])
        waiter = asyncio.get_running_loop().create_future()
        self._status[self.stream] = waiter
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        async with asyncio.timeout(PUBLISH_TIMEOUT_S):
            status = await waiter
        if status.get("status") != "PUBLISHING":
            raise SignalingError("publish_failed", str(status)[:300])
        return self.stream

    async def play(self, stream: str) -> FrameCounter:
        pc = peer_connection()
        self.pcs.append(pc)
        counter = FrameCounter()
        count_frames(pc.addTransceiver("video", direction="recvonly").receiver, counter)
        await pc.setLocalDescription(await pc.createOffer())
        answer = await self.client.request("stream.play", REQUEST_TIMEOUT_S, stream=stream,
                                           sdp=pc.localDescription.sdp)
        if answer.get("type") != "stream.answer":
            raise SignalingError("play_failed", str(answer)[:300])
        check_loopback(answer["sdp"], "play answer")
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        self.plays.append(counter)
        return counter

    async def close(self) -> None:
        await asyncio.gather(*(pc.close() for pc in self.pcs), return_exceptions=True)
        await self.client.close()

