"""aiortc clients for congestion tests, run inside a network namespace
(``ip netns exec NS python -m tests.congestion_peer ...``).

``publish``: publishes a counter video with audio into a room, then plays
it back on ``--viewers`` sessions of its own. ``play``: one session that
plays a given stream. Each prints JSON lines on stdout as things happen,
stamped with ``time.monotonic()`` (one clock for every process of the
machine), and reads commands on stdin: ``mark`` (start the measured
window) and ``stop`` (print the report of the window and exit).

What is printed: ``{"event": "published", "stream"}``, ``{"event":
"playing"}`` once every viewer has frames, each ``stream.paused`` /
``stream.resumed`` frame a session gets (``{"event": "frame", "at",
"frame"}``), and at ``stop`` the report: per viewer the frames played
and the frame rate over the window, the REMB figures the publisher was
told and its encoder's target bitrate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, unpack_remb_fci
from aiortc.utils import uint16_add

from tests.media_clients import Player
from tests.media_tracks import NoisyCounterVideoTrack, ToneAudioTrack
from tests.wsclient import SocketClient

_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
WATCHED = ("stream.paused", "stream.resumed", "stream.status")


class KeyframeFlushingBuffer(JitterBuffer):
    """aiortc's video jitter buffer, made to recover as a browser's does.

    aiortc's holds every frame behind a packet that never came until 512
    packets later (seconds of video); a browser drops the frames waiting for
    lost packets as soon as a keyframe starts, and decodes from it. A
    player that lost packets on a congested link and then gets its video
    back after a keyframe would otherwise show nothing for seconds.
    """

    def __init__(self) -> None:
        super().__init__(capacity=512, is_video=True)

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        origin = self._origin
        if origin is not None and _vp8_keyframe_start(packet.payload):
            waiting = uint16_add(packet.sequence_number, -origin)
            if 0 < waiting < self.capacity and any(
                self._packets[(origin + offset) % self.capacity] is None for offset in range(waiting)
            ):
                self.remove(waiting)
        return super().add(packet)


def _vp8_keyframe_start(payload: bytes) -> bool:
    try:
        descriptor, data = VpxPayloadDescriptor.parse(payload)
    except ValueError:
        return False
    return bool(descriptor.partition_start and descriptor.partition_id == 0 and data and not data[0] & 0x01)


def say(**fields: Any) -> None:
    print(json.dumps({"at": time.monotonic(), **fields}), flush=True)


def peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def read_events(client: SocketClient, name: str) -> None:
    """Read the connection for ever, printing the frames the test looks at."""
    while True:
        try:
            frame = json.loads(await client._receive_text(3600))
        except Exception:
            return
        if frame.get("type") in WATCHED:
            say(event="frame", session=name, frame=frame)


async def viewer(url: str, room: str, login: str, stream: str) -> tuple[SocketClient, Player]:
    client = await SocketClient.connected(url, login)
    state = await client.request("room.join", room=room)
    assert state["type"] == "room.state", state
    pc = peer()
    player = Player(pc)
    video = pc.addTransceiver("video", direction="recvonly")
    setattr(video.receiver, _JITTER_BUFFER, KeyframeFlushingBuffer())
    pc.addTransceiver("audio", direction="recvonly")
    pc.on("track", lambda track: player.tasks.append(asyncio.ensure_future(player.consume(track))))
    await pc.setLocalDescription(await pc.createOffer())
    answer = await client.request("stream.play", stream=stream, sdp=pc.localDescription.sdp, timeout=15)
    assert answer["type"] == "stream.answer", answer
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    await player.wait_for(lambda: player.first_frame_at is not None, timeout=15)
    return client, player


def remb_told(pc: RTCPeerConnection, told: list[tuple[float, int]]) -> None:
    """Keep every REMB figure the publisher's video sender is told."""
    sender = next(t.sender for t in pc.getTransceivers() if t.kind == "video")
    handle = sender._handle_rtcp_packet

    async def handle_watched(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, _ = unpack_remb_fci(packet.fci)
            except ValueError:
                pass
            else:
                told.append((time.monotonic(), bitrate))
        await handle(packet)

    sender._handle_rtcp_packet = handle_watched  # type: ignore[method-assign]


def window_report(player: Player, since: float) -> dict[str, Any]:
    frames = [(at, number) for at, number in player.counters if at >= since]
    seconds = time.monotonic() - since
    return {
        "frames": len({number for _, number in frames}),
        "fps": round(len({number for _, number in frames}) / seconds, 1),
        "last_frame_at": player.counters[-1][0] if player.counters else None,
        "audio_frames": player.audio_frames,
    }


async def commands() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run(args: argparse.Namespace) -> None:
    readers: list[asyncio.Task[None]] = []
    players: dict[str, Player] = {}
    told: list[tuple[float, int]] = []
    publisher: RTCPeerConnection | None = None
    if args.role == "publish":
        client = await SocketClient.connected(args.url, args.login)
        state = await client.request("room.join", room=args.room)
        assert state["type"] == "room.state", state
        publisher = peer()
        publisher.addTransceiver(NoisyCounterVideoTrack(), direction="sendonly")
        publisher.addTransceiver(ToneAudioTrack(), direction="sendonly")
        remb_told(publisher, told)
        await publisher.setLocalDescription(await publisher.createOffer())
        answer = await client.request("stream.publish", room=args.room, kind="camera",
                                      sdp=publisher.localDescription.sdp, timeout=15)
        assert answer["type"] == "stream.answer", answer
        await publisher.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        status = await client.event("stream.status", timeout=15)
        assert status["status"] == "PUBLISHING", status
        stream = answer["stream"]["id"]
        say(event="published", stream=stream)
        readers.append(asyncio.ensure_future(read_events(client, args.login)))
        logins = [f"{args.login}-viewer{number}" for number in range(args.viewers)]
    else:
        stream = args.stream
        logins = [args.login]
    for login in logins:
        client, player = await viewer(args.url, args.room, login, stream)
        players[login] = player
        readers.append(asyncio.ensure_future(read_events(client, login)))
    say(event="playing")

    reader = await commands()
    mark = time.monotonic()
    while line := (await reader.readline()).decode().strip():
        if line == "mark":
            mark = time.monotonic()
            say(event="marked")
        elif line == "status":
            say(event="status", viewers={
                login: {"frames": len(player.counters), "audio_frames": player.audio_frames,
                        "last_frame_at": player.counters[-1][0] if player.counters else None}
                for login, player in players.items()
            })
        elif line == "stop":
            break
    encoder = None
    if publisher is not None:
        sender = next(t.sender for t in publisher.getTransceivers() if t.kind == "video")
        encoder = getattr(sender, "_RTCRtpSender__encoder", None)
    say(
        event="report",
        viewers={login: window_report(player, mark) for login, player in players.items()},
        remb_told=[bitrate for at, bitrate in told if at >= mark],
        encoder_target_bps=getattr(encoder, "target_bitrate", None),
    )
    for task in readers:
        task.cancel()
    for player in players.values():
        await player.pc.close()
    if publisher is not None:
        await publisher.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("publish", "play"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--room", default="links")
    parser.add_argument("--login", default="pub")
    parser.add_argument("--viewers", type=int, default=2)
    parser.add_argument("--stream", default="")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
