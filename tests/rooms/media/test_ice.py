"""Which offer candidates and connectivity checks a media node takes: on a
loopback media host the offer's other candidates are dropped and checks
from other sources go unanswered; off loopback mDNS names are dropped and
checks from anywhere are answered. Real aiortc peers and real UDP sockets;
a non-loopback address exists only in a network namespace the test makes."""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator

import aioice.ice
import pytest
from aioice import stun
from aiortc import RTCPeerConnection, RTCSessionDescription

from rooms.media.ice import offer_candidates_kept
from rooms.media.peer import PublishedStream, use_host_address
from tests import netns
from tests.media_clients import loopback_peer
from tests.media_tracks import CounterVideoTrack, ToneAudioTrack
from tests.processes import ROOT

OUTSIDE_CANDIDATE = "a=candidate:9 1 udp 2122260223 192.0.2.77 50000 typ host\r\n"
MDNS_CANDIDATE = "a=candidate:8 1 udp 2122194687 4f0c2a1e-7d1b-4f6e.local 50001 typ host\r\n"


@pytest.fixture
def host_address(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let a test choose the gathered address; aioice's own lookup is restored after."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    yield


def with_extra_candidates(sdp: str, *candidates: str) -> str:
    """``sdp`` with ``candidates`` added after each of its candidate lines."""
    return re.sub(r"(a=candidate:[^\r\n]*\r\n)", lambda m: m.group(1) + "".join(candidates), sdp)


async def publisher_offer() -> tuple[RTCPeerConnection, str]:
    pc = loopback_peer()
    pc.addTransceiver(CounterVideoTrack(), direction="sendonly")
    pc.addTransceiver(ToneAudioTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def sdp_attribute(sdp: str, name: str) -> str:
    match = re.search(rf"^a={name}:(\S+)", sdp, re.MULTILINE)
    assert match, name
    return match.group(1)


def first_candidate_port(sdp: str) -> int:
    # a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ host
    match = re.search(r"^a=candidate:\S+ \d+ \S+ \d+ \S+ (\d+) ", sdp, re.MULTILINE)
    assert match, sdp
    return int(match.group(1))


def binding_request(answer_sdp: str, offer_sdp: str, password: str | None = None) -> bytes:
    """A binding request the server must take as its peer's, credentials and
    all (signed with ``password`` instead: one it must not)."""
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = f"{sdp_attribute(answer_sdp, 'ice-ufrag')}:{sdp_attribute(offer_sdp, 'ice-ufrag')}"
    request.attributes["PRIORITY"] = 1853824767
    request.attributes["ICE-CONTROLLING"] = secrets.randbits(64)
    request.add_message_integrity((password or sdp_attribute(answer_sdp, "ice-pwd")).encode())
    request.add_fingerprint()
    return bytes(request)


LOOPBACK_CANDIDATE = "a=candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host\r\n"
IPV6_LOOPBACK_CANDIDATE = "a=candidate:2 1 udp 2122260222 ::1 40001 typ host\r\n"
MEDIA_SECTION = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
END = "a=end-of-candidates\r\n"


def test_on_loopback_drops_other_and_mdns_candidates_and_with_them_the_end_of_candidates() -> None:
    sdp = MEDIA_SECTION + LOOPBACK_CANDIDATE + OUTSIDE_CANDIDATE + MDNS_CANDIDATE + IPV6_LOOPBACK_CANDIDATE + END

    # Without the end marker the browser's checks from a dropped address
    # cannot make ICE fail before they are ignored; the loopback pair wins.
    assert offer_candidates_kept(sdp, loopback_only=True) == (
        MEDIA_SECTION + LOOPBACK_CANDIDATE + IPV6_LOOPBACK_CANDIDATE
    )


def test_off_loopback_drops_mdns_names_and_the_machines_own_loopback() -> None:
    sdp = MEDIA_SECTION + LOOPBACK_CANDIDATE + OUTSIDE_CANDIDATE + MDNS_CANDIDATE + END

    # A node on real interfaces is not sent by an offer to services on its own loopback.
    assert offer_candidates_kept(sdp, loopback_only=False) == MEDIA_SECTION + OUTSIDE_CANDIDATE


def test_an_offer_with_nothing_to_drop_is_kept_as_it_is() -> None:
    sdp = MEDIA_SECTION + OUTSIDE_CANDIDATE + END

    assert offer_candidates_kept(sdp, loopback_only=False) == sdp
    assert offer_candidates_kept(MEDIA_SECTION + LOOPBACK_CANDIDATE + END, loopback_only=True) == (
        MEDIA_SECTION + LOOPBACK_CANDIDATE + END
    )


async def test_a_publisher_offering_only_mdns_names_connects_through_its_checks(host_address: None) -> None:
    """A browser that hides its address behind an mDNS name: the node learns
    it from the browser's first check (peer-reflexive) and media flows."""
    use_host_address("127.0.0.1")
    publisher, offer = await publisher_offer()
    hidden = re.sub(r"^(a=candidate:\S+ \d+ \S+ \d+ )127\.0\.0\.1( )", r"\g<1>4f0c2a1e-7d1b.local\2", offer,
                    flags=re.MULTILINE)
    assert "127.0.0.1" not in "".join(line for line in hidden.splitlines() if line.startswith("a=candidate"))
    started = asyncio.Event()
    published, answer = await PublishedStream.accept(
        stream_id="s1", offer_sdp=hidden, video_codec="VP8", ice_servers=[], on_first_media=started.set
    )
    try:
        transports = {t.receiver.transport.transport for t in published.pc.getTransceivers()}
        assert not [c for transport in transports for c in transport.getRemoteCandidates()]
        await publisher.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await asyncio.wait_for(started.wait(), 10)
    finally:
        await published.close()
        await publisher.close()


async def test_offer_candidates_off_loopback_never_reach_ice(host_address: None) -> None:
    use_host_address("127.0.0.1")
    publisher, offer = await publisher_offer()
    offer = with_extra_candidates(offer, OUTSIDE_CANDIDATE)
    assert "192.0.2.77" in offer
    started = asyncio.Event()
    published, answer = await PublishedStream.accept(
        stream_id="s1", offer_sdp=offer, video_codec="VP8", ice_servers=[], on_first_media=started.set
    )
    try:
        transports = {t.receiver.transport.transport for t in published.pc.getTransceivers()}
        remote = {c.ip for transport in transports for c in transport.getRemoteCandidates()}
        assert remote == {"127.0.0.1"}, remote
        # The loopback candidates still carry the media.
        await publisher.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await asyncio.wait_for(started.wait(), 10)
    finally:
        await published.close()
        await publisher.close()


@pytest.mark.parametrize("gathered_on", ["loopback", "interface"])
def test_checks_from_outside_loopback_are_answered_only_off_loopback(gathered_on: str) -> None:
    """Run in a network namespace of the test's own, where the one
    non-loopback address (the browser's "second address") is the test's."""
    with netns.machine() as machine:
        server_ip = "127.0.0.1" if gathered_on == "loopback" else machine.address
        probe = subprocess.run(
            machine.command(sys.executable, "-m", "tests.rooms.media.test_ice", server_ip, machine.address),
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
    assert probe.returncode == 0, probe.stderr
    outside_answered = probe.stdout.split()[-1] == "answered"
    assert outside_answered == (gathered_on == "interface"), probe.stdout


async def outside_check_answered(server_ip: str, outside_ip: str) -> bool:
    """Whether a check from ``outside_ip`` to a node gathering on ``server_ip`` is answered.

    One from ``server_ip`` itself is always answered (asserted).
    """
    use_host_address(server_ip)
    publisher, offer = await publisher_offer()
    published, answer = await PublishedStream.accept(stream_id="s1", offer_sdp=offer, video_codec="VP8", ice_servers=[])
    server = (server_ip, first_candidate_port(answer))
    outside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        outside.bind((outside_ip, 0))
        inside.bind((server_ip, 0))
        inside.setblocking(False)
        outside.setblocking(False)
        # Sent in this order to one server socket, answered in this order:
        # once the second is answered the first has had its chance.
        outside.sendto(binding_request(answer, offer), server)
        inside.sendto(binding_request(answer, offer), server)
        reply = stun.parse_message(await asyncio.wait_for(asyncio.get_running_loop().sock_recv(inside, 2048), 5))
        assert reply.message_class == stun.Class.RESPONSE
        assert reply.attributes["XOR-MAPPED-ADDRESS"] == inside.getsockname()
        try:
            outside_reply = outside.recv(2048)
        except BlockingIOError:
            return False
        assert stun.parse_message(outside_reply).attributes["XOR-MAPPED-ADDRESS"] == outside.getsockname()
        return True
    finally:
        outside.close()
        inside.close()
        await published.close()
        await publisher.close()


if __name__ == "__main__":
    # The probe, run inside the namespace: python -m tests.rooms.media.test_ice SERVER_IP OUTSIDE_IP
    answered = asyncio.run(outside_check_answered(sys.argv[1], sys.argv[2]))
    print("answered" if answered else "unanswered")


def test_answers_behind_a_one_to_one_nat_name_the_public_address() -> None:
    from rooms.media.ice import answer_addresses_public

    answer = (
        "v=0\r\nm=video 40012 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 10.0.0.5\r\n"
        "a=candidate:a1 1 udp 2130706431 10.0.0.5 40012 typ host\r\n"
        "a=candidate:a2 1 udp 2130706431 fd00::5 40013 typ host\r\n"
        "a=candidate:a3 1 udp 1694498815 198.51.100.9 40012 typ srflx raddr 10.0.0.5 rport 40012\r\n"
    )
    assert answer_addresses_public(answer, "203.0.113.7") == (
        "v=0\r\nm=video 40012 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 203.0.113.7\r\n"
        "a=candidate:a1 1 udp 2130706431 203.0.113.7 40012 typ host\r\n"
        "a=candidate:a2 1 udp 2130706431 fd00::5 40013 typ host\r\n"
        "a=candidate:a3 1 udp 1694498815 198.51.100.9 40012 typ srflx raddr 10.0.0.5 rport 40012\r\n"
    )
    assert answer_addresses_public(answer, "") == answer
