"""Active speaker: two aiortc publishers speak in turns, a third member's
WebSocket hears ``room.speakers`` follow whoever speaks.

Each publisher sends a tone for one second, then one second of silence,
alternating with the other; aiortc's sender puts each frame's real level
(RFC 6465 Appendix A, from the samples) in the RFC 6464 header extension.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import time
from typing import Any

import pytest
from aiortc import RTCSessionDescription

from rooms.media.peer import use_host_address
from tests.media_clients import loopback_peer
from tests.media_tracks import PacedAudioTrack
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

TURN = 1.0  # seconds each publisher speaks, then stays silent as long
TURNS = 6
LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


@pytest.fixture(autouse=True)
def loopback_media() -> None:
    use_host_address("127.0.0.1")


class TurnsAudioTrack(PacedAudioTrack):
    """A 440 Hz tone during the turns of ``phase`` (0 or 1) counted from
    ``epoch`` (time.monotonic), silence during the other's."""

    def __init__(self, epoch: float, phase: int) -> None:
        super().__init__()
        self.epoch = epoch
        self.phase = phase

    def sample_values(self, first: int) -> list[int]:
        if int((time.monotonic() - self.epoch) // TURN) % 2 != self.phase:
            return [0] * self.samples
        return [int(12_000 * math.sin(2 * math.pi * 440 * (first + i) / self.rate)) for i in range(self.samples)]


async def publish_audio(client: SocketClient, room: str, track: TurnsAudioTrack) -> tuple[Any, str, str]:
    pc = loopback_peer()
    pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    assert LEVEL_URI in pc.localDescription.sdp
    answer = await client.request("stream.publish", room=room, kind="camera", sdp=pc.localDescription.sdp, timeout=10)
    assert answer["type"] == "stream.answer", answer
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    status = await client.event("stream.status", timeout=10)
    assert status["status"] == "PUBLISHING", status
    return pc, answer["stream"]["id"], answer["sdp"]


async def speakers_heard(client: SocketClient, until: float) -> list[tuple[float, dict[str, Any]]]:
    """Every room.speakers frame before ``until`` (time.monotonic), with when it arrived."""
    heard = []
    while (left := until - time.monotonic()) > 0:
        try:
            frame = json.loads(await client._receive_text(left))
        except TimeoutError:
            break
        if frame["type"] == "room.speakers":
            heard.append((time.monotonic(), frame))
    return heard


async def closed_after_reading(client: SocketClient) -> None:
    """Close a connection that got events it did not read: read them first,
    or the close handshake waits its timeout behind them."""
    with contextlib.suppress(TimeoutError):
        while True:
            await client._receive_text(0.2)
    await client.close()


async def test_the_ranking_follows_who_speaks_within_a_second(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server("daphne", "web", env={"SPEAKERS_INTERVAL_MS": "250"})
    alice = await SocketClient.connected(server.ws_url, "alice")
    bob = await SocketClient.connected(server.ws_url, "bob")
    carol = await SocketClient.connected(server.ws_url, "carol")
    for client in (alice, bob, carol):
        await client.request("room.join", room="turns")
    # The turns start at a known instant a little ahead: both publishers are
    # up by then.
    epoch = time.monotonic() + 2.0
    alice_pc, alice_stream, alice_answer = await publish_audio(alice, "turns", TurnsAudioTrack(epoch, phase=0))
    bob_pc, bob_stream, _ = await publish_audio(bob, "turns", TurnsAudioTrack(epoch, phase=1))
    # The node's answer negotiates the level extension: without it aiortc
    # drops the level from every packet it parses.
    assert LEVEL_URI in alice_answer
    try:
        heard = await speakers_heard(carol, until=epoch + TURNS * TURN + 0.5)
    finally:
        await alice_pc.close()
        await bob_pc.close()

    streams = {"alice": alice_stream, "bob": bob_stream}
    latencies = []
    for turn in range(1, TURNS):
        starts = epoch + turn * TURN
        speaker = "alice" if turn % 2 == 0 else "bob"
        first = next(
            ((at, frame) for at, frame in heard
             if at >= starts and frame["speakers"] and frame["speakers"][0]["participant"] == speaker),
            None,
        )
        assert first is not None, f"{speaker} never ranked first after turn {turn}: {heard}"
        at, frame = first
        latencies.append(at - starts)
        top = frame["speakers"][0]
        assert frame["room"] == "turns" and top["stream"] == streams[speaker]
        # A 12000-peak tone is -12 dBov: level 0.8 on the 60 dB scale.
        assert 0.7 <= top["level"] <= 0.9, frame
    print(f"speaker switch latencies (s): {', '.join(f'{latency:.3f}' for latency in latencies)}")
    assert max(latencies) < 1.0, latencies

    # Only on change, at most one per interval: never the same ranking twice
    # in a row, never more than 4 a second.
    frames = [frame for _, frame in heard]
    assert all(a != b for a, b in itertools.pairwise(frames)), frames
    during = [at for at, _ in heard if at >= epoch]
    assert len(during) <= 4 * (TURNS * TURN + 0.5) + 1, heard
    # Silence ends each turn: the silent publisher leaves the ranking before
    # the other speaks again.
    assert any([s["participant"] for s in frame["speakers"]] == ["bob"] for frame in frames), frames
    for client in (alice, bob, carol):
        await closed_after_reading(client)
