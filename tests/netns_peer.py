"""An aiortc client run inside a network namespace (``ip netns exec NS python -m tests.netns_peer``).

It connects to a server over protocol v1, uses the ICE servers the
session is given, and publishes a counter video with audio; then a second
session (a viewer) joins the room and plays it. It prints one JSON line:
how long from the viewer's WebSocket opening to its first played frame
(and the steps between), the frame rate played over a window, and the
candidate pair each peer connection selected.

A process of its own because a network namespace belongs to a process:
the test stays in the host's namespace and reads the result.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from tests.media_clients import Player
from tests.media_tracks import CounterVideoTrack, ToneAudioTrack
from tests.wsclient import SocketClient


def peer(ice_servers: list[dict[str, Any]]) -> RTCPeerConnection:
    servers = [
        RTCIceServer(urls=server["urls"], username=server.get("username"), credential=server.get("credential"))
        for server in ice_servers
    ]
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))


def selected_pair(pc: RTCPeerConnection) -> dict[str, Any]:
    """The candidate pair ICE nominated (aioice's, as getStats would tell a browser)."""
    transport = pc.getTransceivers()[0].receiver.transport.transport
    pair = transport._connection._nominated.get(1)
    if pair is None:
        return {}
    local, remote = pair.local_candidate, pair.remote_candidate
    return {
        "local": {"type": local.type, "host": local.host, "port": local.port},
        "remote": {"type": remote.type, "host": remote.host, "port": remote.port},
    }


def candidates(sdp: str) -> list[str]:
    return [line.removeprefix("a=") for line in sdp.splitlines() if line.startswith("a=candidate:")]


def frame_rate(player: Player, window_s: float) -> float:
    """Distinct frames played per second over the last ``window_s`` seconds."""
    end = player.counters[-1][0]
    numbers = {number for at, number in player.counters if at > end - window_s}
    return len(numbers) / window_s


def longest_gap(player: Player) -> float:
    """The longest wait between two played frames, in seconds."""
    times = [at for at, _ in player.counters]
    return max((later - earlier for earlier, later in itertools.pairwise(times)), default=0.0)


async def run(url: str, room: str, login: str, window_s: float) -> dict[str, Any]:
    """``login`` publishes; then ``<login>-viewer``, a session of its own, joins and plays it."""
    started = time.monotonic()
    client = await SocketClient.open(url)
    status = await client.connect_session(login)
    ice_servers: list[dict[str, Any]] = status["ice_servers"]
    publisher = peer(ice_servers)
    publisher.addTransceiver(CounterVideoTrack(), direction="sendonly")
    publisher.addTransceiver(ToneAudioTrack(), direction="sendonly")
    await publisher.setLocalDescription(await publisher.createOffer())
    state = await client.request("room.join", room=room)
    assert state["type"] == "room.state", state
    answer = await client.request("stream.publish", room=room, kind="camera", sdp=publisher.localDescription.sdp,
                                  timeout=15)
    assert answer["type"] == "stream.answer", answer
    await publisher.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    publishing = await client.event("stream.status", timeout=15)
    assert publishing["status"] == "PUBLISHING", publishing
    publish_s = time.monotonic() - started

    # What a person joining the room waits for: from opening the connection
    # to the first frame of a stream already published.
    opened = time.monotonic()
    steps: dict[str, float] = {}
    viewer = await SocketClient.open(url)
    viewer_status = await viewer.connect_session(f"{login}-viewer")
    steps["established"] = time.monotonic() - opened
    viewer_state = await viewer.request("room.join", room=room)
    assert viewer_state["type"] == "room.state", viewer_state
    steps["joined"] = time.monotonic() - opened
    pc = peer(viewer_status["ice_servers"])
    player = Player(pc)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    pc.on("track", lambda track: player.tasks.append(asyncio.ensure_future(player.consume(track))))
    await pc.setLocalDescription(await pc.createOffer())
    steps["gathered"] = time.monotonic() - opened
    played = await viewer.request("stream.play", stream=answer["stream"]["id"], sdp=pc.localDescription.sdp,
                                  timeout=15)
    assert played["type"] == "stream.answer", played
    steps["answered"] = time.monotonic() - opened
    await pc.setRemoteDescription(RTCSessionDescription(played["sdp"], "answer"))
    await player.wait_for(lambda: player.first_frame_at is not None, timeout=15)
    assert player.first_frame_at is not None
    steps["first_frame"] = player.first_frame_at - opened
    await player.wait_for(lambda: player.counters[-1][0] - player.first_frame_at >= window_s + 0.5, timeout=30)
    result = {
        "connect_to_first_frame_s": round(steps["first_frame"], 3),
        "steps_s": {name: round(value, 3) for name, value in steps.items()},
        "publish_s": round(publish_s, 3),
        "fps": round(frame_rate(player, window_s), 1),
        "longest_gap_s": round(longest_gap(player), 3),
        "last_counter": player.counters[-1][1],
        "audio_frames": player.audio_frames,
        "ice_servers": ice_servers,
        "viewer_ice_servers": viewer_status["ice_servers"],
        "publish": {"pair": selected_pair(publisher), "answer_candidates": candidates(answer["sdp"])},
        "play": {"pair": selected_pair(pc), "answer_candidates": candidates(played["sdp"])},
    }
    for task in player.tasks:
        task.cancel()
    await pc.close()
    await publisher.close()
    await viewer.close()
    await client.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="ws://host:port/ws/rooms/")
    parser.add_argument("--room", default="relay")
    parser.add_argument("--login", default="alice")
    parser.add_argument("--window", type=float, default=2.0, help="seconds over which the frame rate is measured")
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.room, args.login, args.window))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
