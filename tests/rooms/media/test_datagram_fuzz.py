"""Random datagrams at a media node's UDP ports during a live stream.

A real aiortc publisher streams 30 fps through the in-process media node to
a real aiortc player while a thread sends ``FUZZ_DATAGRAMS`` (default
100,000) random datagrams, 0-1500 bytes, to the node's ports of both peer
connections: plain random bytes and ones with STUN, RTP, RTCP and DTLS
headers. The node must live and the player keep receiving about 30 fps
before, during and after. Only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import struct
import threading
import time

import pytest

from rooms.media.peer import use_host_address
from tests.media_clients import Camera, Player, play, publish
from tests.wsclient import ProtocolClient

pytestmark = pytest.mark.django_db(transaction=True)

DATAGRAMS = int(os.environ.get("FUZZ_DATAGRAMS", "100000"))
STUN_COOKIE = 0x2112A442


def random_datagram(rng: random.Random) -> bytes:
    size = rng.randint(0, 1500)
    body = rng.randbytes(size)
    kind = rng.randrange(5)
    if kind == 0 or size < 20:
        return body
    if kind == 1:  # STUN: a binding request/response/error header with a plausible length
        message_type = rng.choice([0x0001, 0x0101, 0x0111, 0x0011, rng.randrange(0x4000)])
        length = rng.choice([size - 20, (size - 20) & ~3, rng.randrange(65536)])
        return struct.pack("!HHI", message_type, length & 0xFFFF, STUN_COOKIE) + body[8:]
    if kind == 2:  # RTP: version 2, a payload type the node negotiates
        return bytes([0x80 | rng.randrange(0x40), rng.choice([96, 97, 111, 0x80 | 96, rng.randrange(256)])]) + body[2:]
    if kind == 3:  # RTCP: SR, RR, SDES, BYE, APP, RTPFB, PSFB, XR
        return bytes([0x80 | rng.randrange(0x20), rng.randrange(200, 208)]) + body[2:]
    # DTLS record: handshake, alert, change cipher spec or application data
    return bytes([rng.choice([20, 21, 22, 23]), 0xFE, rng.choice([0xFD, 0xFF])]) + body[3:]


def node_ports(answer_sdp: str) -> set[int]:
    return {int(port) for port in re.findall(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host", answer_sdp)}


def blast(ports: list[int], count: int, done: threading.Event) -> None:
    rng = random.Random(20261205)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        started = time.monotonic()
        for number in range(count):
            sender.sendto(random_datagram(rng), ("127.0.0.1", ports[number % len(ports)]))
            if number % 200 == 199:
                # About 10,000 a second: pace so the kernel drops none of them.
                time.sleep(max(0.0, started + (number + 1) / 10000 - time.monotonic()))
    done.set()


@pytest.fixture(autouse=True)
def media_setup(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_HOST_IP = "127.0.0.1"
    use_host_address("127.0.0.1")


async def live_stream() -> tuple[ProtocolClient, ProtocolClient, Camera, Player, list[int]]:
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="noise")
    await bob.request("room.join", room="noise")
    camera = await publish(alice, "noise")
    player = await play(bob, camera.stream["id"])
    await player.wait_for(lambda: len(player.counters) >= 30, 15)
    local = {player.pc.localDescription.sdp, camera.pc.localDescription.sdp}
    ports = sorted(
        node_ports(camera.pc.remoteDescription.sdp) | node_ports(player.pc.remoteDescription.sdp)
    )
    assert ports and not any(node_ports(sdp) & set(ports) for sdp in local), ports
    return alice, bob, camera, player, ports


async def test_an_empty_datagram_does_not_end_a_peer_connection() -> None:
    """Found by the fuzz below: aiortc's DTLS read the first byte of an empty datagram and stopped."""
    alice, bob, camera, player, ports = await live_stream()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for port in ports:
            sender.sendto(b"", ("127.0.0.1", port))
    seen = len(player.counters)
    await player.wait_for(lambda: len(player.counters) >= seen + 30, 10)
    assert camera.pc.connectionState == "connected" and player.pc.connectionState == "connected"
    for client in (alice, bob):
        await client.close()
    await camera.close()
    await player.pc.close()


async def test_random_datagrams_do_not_stop_a_live_stream() -> None:
    alice, bob, camera, player, ports = await live_stream()

    def fps(start: float, end: float) -> float:
        return sum(1 for at, _ in player.counters if start <= at < end) / (end - start)

    before = time.monotonic()
    await asyncio.sleep(2)  # the measured window is the point: frames in 2 s
    during = time.monotonic()
    done = threading.Event()
    sender = threading.Thread(target=blast, args=(ports, DATAGRAMS, done))
    sender.start()
    await asyncio.to_thread(done.wait, 120)
    sender.join()
    after = time.monotonic()
    await asyncio.sleep(2)
    end = time.monotonic()
    rates = (fps(before, during), fps(during, after), fps(after, end))
    print(f"{DATAGRAMS} datagrams to ports {ports} in {after - during:.1f} s; fps before/during/after: {rates}")
    assert all(rate >= 20 for rate in rates), rates
    numbers = [number for _, number in player.counters]
    assert numbers == sorted(numbers)
    assert (await alice.request("ping"))["type"] == "pong"
    assert camera.pc.connectionState == "connected" and player.pc.connectionState == "connected"
    await alice.request("stream.unpublish", stream=camera.stream["id"])
    for client in (alice, bob):
        await client.close()
    await camera.close()
    await player.pc.close()
