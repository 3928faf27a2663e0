"""WebRTC test clients: publish synthetic media, play and read it back."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tests.media_tracks import CounterVideoTrack, ToneAudioTrack, audio_energy, mean_luma, read_counter
from tests.wsclient import _Client as Client


def loopback_peer() -> RTCPeerConnection:
    """A client peer connection that asks no STUN server (aiortc's default would)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


@dataclass
class Player:
    pc: RTCPeerConnection
    counters: list[tuple[float, int]] = field(default_factory=list)
    sizes: set[tuple[int, int]] = field(default_factory=set)
    audio_frames: int = 0
    audio_energy: float = 0.0
    lumas: list[float] = field(default_factory=list)
    audio_formats: set[tuple[str, str, int]] = field(default_factory=set)
    first_frame_at: float | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    async def consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    if self.first_frame_at is None:
                        self.first_frame_at = time.monotonic()
                    self.counters.append((time.monotonic(), read_counter(frame)))
                    self.sizes.add((frame.width, frame.height))
                    if len(self.counters) % 15 == 1:
                        self.lumas.append(mean_luma(frame))
                    self.changed.set()
                elif isinstance(frame, av.AudioFrame):
                    self.audio_frames += 1
                    self.audio_energy = max(self.audio_energy, audio_energy(frame))
                    self.changed.set()
                    self.audio_formats.add((frame.format.name, frame.layout.name, frame.samples))
        except MediaStreamError:
            return


@dataclass
class Camera:
    pc: RTCPeerConnection
    video: CounterVideoTrack
    stream: dict[str, Any]

    async def close(self) -> None:
        await self.pc.close()


@dataclass
class Publisher:
    pc: RTCPeerConnection
    video: MediaStreamTrack
    audio: MediaStreamTrack


async def publisher_offer(
    codec: str = "VP8", shade: int = 128, tracks: tuple[MediaStreamTrack, MediaStreamTrack] | None = None
) -> tuple[Publisher, str]:
    pc = loopback_peer()
    video, audio = tracks or (CounterVideoTrack(shade=shade), ToneAudioTrack())
    pc.addTransceiver(video, direction="sendonly")
    pc.addTransceiver(audio, direction="sendonly")
    if codec == "H264":
        from aiortc import RTCRtpSender

        transceiver = pc.getTransceivers()[0]
        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
        )
    await pc.setLocalDescription(await pc.createOffer())
    return Publisher(pc, video, audio), pc.localDescription.sdp


async def publish(
    client: Client, room: str, kind: str = "camera", shade: int = 128, record: bool | None = None
) -> Camera:
    pc = loopback_peer()
    video = CounterVideoTrack(shade=shade)
    pc.addTransceiver(video, direction="sendonly")
    pc.addTransceiver(ToneAudioTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    fields = {} if record is None else {"record": record}
    answer = await client.request(
        "stream.publish", room=room, kind=kind, sdp=pc.localDescription.sdp, timeout=10, **fields
    )
    assert answer["type"] == "stream.answer", answer
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    status = await client.event("stream.status", timeout=10)
    assert status == {"type": "stream.status", "stream": answer["stream"]["id"], "status": "PUBLISHING"}
    return Camera(pc, video, answer["stream"])


async def publish_audio(client: Client, room: str, track: MediaStreamTrack) -> tuple[RTCPeerConnection, str, str]:
    """Publish ``track`` alone (a microphone without a camera): the peer
    connection, the stream id and the server's answer SDP."""
    pc = loopback_peer()
    pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await client.request("stream.publish", room=room, kind="camera", sdp=pc.localDescription.sdp, timeout=10)
    assert answer["type"] == "stream.answer", answer
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    status = await client.event("stream.status", timeout=10)
    assert status == {"type": "stream.status", "stream": answer["stream"]["id"], "status": "PUBLISHING"}, status
    return pc, answer["stream"]["id"], answer["sdp"]


async def new_player() -> Player:
    """A receive-only peer whose offer is ready in ``player.pc.localDescription``."""
    pc = loopback_peer()
    player = Player(pc)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    pc.on("track", lambda track: player.tasks.append(asyncio.ensure_future(player.consume(track))))
    await pc.setLocalDescription(await pc.createOffer())
    return player


async def play(client: Client, stream_id: str) -> Player:
    player = await new_player()
    pc = player.pc
    answer = await client.request("stream.play", stream=stream_id, sdp=pc.localDescription.sdp, timeout=10)
    assert answer["type"] == "stream.answer", answer
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    return player




def rtp_sent_lossy(pc: RTCPeerConnection, every: int) -> None:
    """Drop every ``every``-th RTP packet ``pc`` sends (not RTCP), as a lossy uplink would.

    The far end sees the gaps in the sequence numbers and sends NACKs.
    """
    from aiortc.rtp import is_rtcp

    transport = pc.getSenders()[0].transport
    send = transport._send_rtp
    sent = 0

    async def send_lossy(data: bytes) -> None:
        nonlocal sent
        if not is_rtcp(data):
            sent += 1
            if sent % every == 0:
                return
        await send(data)

    transport._send_rtp = send_lossy


def rtp_received_lossy(pc: RTCPeerConnection, kind: str, every: int) -> None:
    """Lose every ``every``-th RTP packet of ``kind`` that reaches ``pc``, as a lossy downlink would.

    ``pc``'s receiver sees the gaps and sends NACKs to the far end.
    """
    receiver = next(transceiver.receiver for transceiver in pc.getTransceivers() if transceiver.kind == kind)
    handle = receiver._handle_rtp_packet
    received = 0

    async def handle_lossy(packet: Any, arrival_time_ms: int) -> None:
        nonlocal received
        received += 1
        if received % every:
            await handle(packet, arrival_time_ms=arrival_time_ms)

    receiver._handle_rtp_packet = handle_lossy
