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
import time
from typing import Any

import pytest

from rooms.media.peer import use_host_address
from tests.media_clients import publish_audio
from tests.media_tracks import TurnsAudioTrack
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

TURN = 1.0  # seconds each publisher speaks, then stays silent as long
TURNS = 6
LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


@pytest.fixture(autouse=True)
def loopback_media() -> None:
    use_host_address("127.0.0.1")


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


def switch_latencies(heard: list[tuple[float, dict[str, Any]]], epoch: float, turns: int,
                     turn: float = TURN) -> list[tuple[float, dict[str, Any]]]:
    """For each change of turn after the first: how long after it the new
    speaker ("alice" in even turns, "bob" in odd ones) was first ranked
    first, and that frame."""
    switches = []
    for number in range(1, turns):
        starts = epoch + number * turn
        speaker = "alice" if number % 2 == 0 else "bob"
        first = next(
            ((at, frame) for at, frame in heard
             if at >= starts and frame["speakers"] and frame["speakers"][0]["participant"] == speaker),
            None,
        )
        assert first is not None, f"{speaker} never ranked first after turn {number}: {heard}"
        switches.append((first[0] - starts, first[1]))
    return switches


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
    alice_pc, alice_stream, alice_answer = await publish_audio(alice, "turns", TurnsAudioTrack(epoch, 0, TURN))
    bob_pc, bob_stream, _ = await publish_audio(bob, "turns", TurnsAudioTrack(epoch, 1, TURN))
    # The node's answer negotiates the level extension: without it aiortc
    # drops the level from every packet it parses.
    assert LEVEL_URI in alice_pc.localDescription.sdp and LEVEL_URI in alice_answer
    try:
        heard = await speakers_heard(carol, until=epoch + TURNS * TURN + 0.5)
    finally:
        await alice_pc.close()
        await bob_pc.close()

    streams = {"alice": alice_stream, "bob": bob_stream}
    switches = switch_latencies(heard, epoch, TURNS)
    for _, frame in switches:
        top = frame["speakers"][0]
        assert frame["room"] == "turns" and top["stream"] == streams[top["participant"]]
        # A 12000-peak tone is -12 dBov: level 0.8 on the 60 dB scale.
        assert 0.7 <= top["level"] <= 0.9, frame
    latencies = [latency for latency, _ in switches]
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
