"""Where a media node may send ICE connectivity checks: an offer's
candidates at invalid or denied addresses are dropped, at most the cap of
destinations is kept per offer, and checks from more sources than the cap
go unanswered, so a hostile offer cannot make the node a scanner or a
reflector. Real aiortc peers; the node's packets are counted where they
arrive, on real UDP sockets bound to many loopback addresses."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import aioice.ice
import aioice.stun
import pytest
from aiortc import RTCPeerConnection

from rooms.media.ice import CandidatePolicy, offer_candidates_kept
from rooms.media.peer import PlayedStream, PublishedStream, use_host_address
from tests import netns
from tests.media_clients import loopback_peer
from tests.processes import ROOT
from tests.rooms.media.test_ice import MEDIA_SECTION, binding_request, first_candidate_port, publisher_offer

CAP = 16
DENIED = ipaddress.ip_network("127.99.0.0/16")
# Off loopback (in a namespace) the offer's sockets sit on a network routed
# to the namespace's own lo: a node on real interfaces sends nothing to loopback.
TARGETS_OFF_LOOPBACK = ipaddress.ip_network("10.240.0.0/16")
DENIED_OFF_LOOPBACK = ipaddress.ip_network("10.241.0.0/16")
POLICY = CandidatePolicy(max_remote_candidates=CAP, denied_networks=(DENIED, DENIED_OFF_LOOPBACK))
# Candidates no check may go to, whatever the mode.
INVALID_HOSTS = {
    "multicast": "224.0.0.251",
    "multicast, organisation-local": "239.255.255.250",
    "link-local multicast (IPv6)": "ff02::1",
    "multicast, IPv4-mapped": "::ffff:224.0.0.1",
    "broadcast": "255.255.255.255",
    "unspecified": "0.0.0.0",
    "unspecified (IPv6)": "::",
    "this network (0.0.0.0/8)": "0.1.2.3",
    "denied network": "127.99.4.5",
    "denied network, IPv4-mapped": "::ffff:127.99.4.5",
    "mDNS name": "4f0c2a1e-7d1b-4f6e.local",
    "host name": "intranet.example",
}


def candidate(index: int, host: str, port: int, *, priority: int = 2122260223, transport: str = "udp",
              component: int = 1) -> str:
    return f"a=candidate:{index} {component} {transport} {priority} {host} {port} typ host\r\n"


@pytest.fixture
def host_address(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let a test choose the gathered address; aioice's own lookup is restored after."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    yield


def stun_sent(patch: pytest.MonkeyPatch) -> Counter[tuple[str, int]]:
    """Every STUN message aioice sends from now on, by destination: also
    those to addresses no socket of the test could listen on."""
    sent: Counter[tuple[str, int]] = Counter()
    send_stun = aioice.ice.StunProtocol.send_stun

    def counted(self: aioice.ice.StunProtocol, message: aioice.stun.Message, addr: tuple[str, int]) -> None:
        sent[(addr[0], addr[1])] += 1
        send_stun(self, message, addr)

    patch.setattr(aioice.ice.StunProtocol, "send_stun", counted)
    return sent


def check_changes(patch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set whenever a candidate pair of any connection changes state from now on."""
    changed = asyncio.Event()
    check_state = aioice.ice.Connection.check_state

    def noted(
        self: aioice.ice.Connection, pair: aioice.ice.CandidatePair, state: aioice.ice.CandidatePair.State
    ) -> None:
        check_state(self, pair, state)
        changed.set()

    patch.setattr(aioice.ice.Connection, "check_state", noted)
    return changed


@dataclass
class Listeners:
    """UDP sockets on many loopback addresses, and what reached them."""

    sockets: list[socket.socket]
    addresses: list[tuple[str, int]]
    received: dict[tuple[str, int], list[bytes]] = field(default_factory=dict)

    def drain(self) -> None:
        for s in self.sockets:
            while True:
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    break
                self.received.setdefault(s.getsockname(), []).append(data)

    def requests(self) -> dict[tuple[str, int], list[aioice.stun.Message]]:
        """The STUN requests each address received (responses aside)."""
        found = {}
        for address, datagrams in self.received.items():
            messages = [aioice.stun.parse_message(data) for data in datagrams]
            requests = [m for m in messages if m.message_class == aioice.stun.Class.REQUEST]
            if requests:
                found[address] = requests
        return found


@contextmanager
def listeners(hosts: list[str]) -> Iterator[Listeners]:
    with ExitStack() as stack:
        sockets = []
        for host in hosts:
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            s.bind((host, 0))
            s.setblocking(False)
            sockets.append(s)
        yield Listeners(sockets, [s.getsockname() for s in sockets])


def loopback_hosts(network: str, count: int) -> list[str]:
    hosts = ipaddress.ip_network(network).hosts()
    return [str(next(hosts)) for _ in range(count)]


def with_candidates(offer: str, candidates: list[str]) -> str:
    """``offer`` with its own candidate lines replaced by ``candidates`` (in its first m-section)."""
    offer = re.sub(r"a=candidate:[^\r\n]*\r\n|a=end-of-candidates\r\n", "", offer)
    first_media = offer.index("m=")
    first_attribute = offer.index("a=", first_media)
    return offer[:first_attribute] + "".join(candidates) + "a=end-of-candidates\r\n" + offer[first_attribute:]


def all_checks_done(stream: PublishedStream | PlayedStream) -> bool:
    """Whether no check of ``stream``'s peer connection will be sent any more."""
    connections = {t.receiver.transport.transport._connection for t in stream.pc.getTransceivers()}
    pairs = [pair for connection in connections for pair in connection._check_list]
    return bool(pairs) and all(
        pair.state in (aioice.ice.CandidatePair.State.FAILED, aioice.ice.CandidatePair.State.SUCCEEDED)
        for pair in pairs
    )


async def until(predicate: Callable[[], bool], changed: asyncio.Event, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            changed.clear()
            await changed.wait()


def remote_destinations(pc: RTCPeerConnection) -> set[tuple[str, int]]:
    transports = {t.receiver.transport.transport for t in pc.getTransceivers()}
    return {(c.ip, c.port) for transport in transports for c in transport.getRemoteCandidates()}


# --- the offer's candidates ------------------------------------------------------------


@pytest.mark.parametrize("kind", list(INVALID_HOSTS))
@pytest.mark.parametrize("loopback_only", [False, True])
def test_each_invalid_kind_of_candidate_is_dropped(kind: str, loopback_only: bool) -> None:
    valid = candidate(1, "127.0.0.1" if loopback_only else "192.0.2.10", 40000)
    sdp = MEDIA_SECTION + valid + candidate(2, INVALID_HOSTS[kind], 40001)

    assert offer_candidates_kept(sdp, loopback_only=loopback_only, policy=POLICY) == MEDIA_SECTION + valid


@pytest.mark.parametrize("line", [
    candidate(2, "192.0.2.11", 40001, transport="tcp"),
    candidate(2, "192.0.2.11", 40001, component=2),
    candidate(2, "192.0.2.11", 0),
    candidate(2, "192.0.2.11", 70000),
    "a=candidate:2 1 udp 2122260223 192.0.2.11\r\n",
])
def test_candidates_that_cannot_pair_are_dropped(line: str) -> None:
    valid = candidate(1, "192.0.2.10", 40000)

    assert offer_candidates_kept(MEDIA_SECTION + valid + line, loopback_only=False, policy=POLICY) == (
        MEDIA_SECTION + valid
    )


def test_valid_unicast_addresses_outside_the_denied_networks_are_kept() -> None:
    kept = [candidate(1, "192.0.2.10", 40000), candidate(2, "10.1.2.3", 40001), candidate(3, "2001:db8::1", 40002),
            candidate(5, "169.254.1.1", 40004)]
    sdp = MEDIA_SECTION + "".join(kept) + "a=end-of-candidates\r\n"

    assert offer_candidates_kept(sdp, loopback_only=False, policy=POLICY) == sdp


def test_the_deny_list_drops_what_it_names_and_only_that() -> None:
    internal = CandidatePolicy(denied_networks=(ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")))
    public, inside, inside6 = candidate(1, "192.0.2.10", 40000), candidate(2, "10.1.2.3", 1), candidate(3, "fd12::1", 2)

    assert offer_candidates_kept(MEDIA_SECTION + public + inside + inside6, loopback_only=False, policy=internal) == (
        MEDIA_SECTION + public
    )
    assert offer_candidates_kept(MEDIA_SECTION + public + inside + inside6, loopback_only=False) == (
        MEDIA_SECTION + public + inside + inside6
    )


def test_at_most_the_cap_of_destinations_is_kept_the_highest_priorities_first() -> None:
    lines = [candidate(i, f"192.0.2.{i}", 40000 + i, priority=1000 + i) for i in range(1, 41)]

    kept = offer_candidates_kept(MEDIA_SECTION + "".join(lines), loopback_only=False, policy=CandidatePolicy(4))

    assert kept == MEDIA_SECTION + "".join(lines[-4:])


def test_a_destination_repeated_in_another_section_counts_once() -> None:
    first = [candidate(i, f"192.0.2.{i}", 40000) for i in range(1, 5)]
    second = [candidate(i, f"192.0.2.{i}", 40000) for i in range(1, 5)]
    sdp = MEDIA_SECTION + "".join(first) + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" + "".join(second)

    assert offer_candidates_kept(sdp, loopback_only=False, policy=CandidatePolicy(4)) == sdp


# --- what the node actually sends -------------------------------------------------------


@dataclass
class Reach:
    """Where the node's STUN went after a hostile offer, as "host:port" keys."""

    offer_bytes: int
    valid: list[str]  # the sockets of the offer's valid candidates
    requests: dict[str, int]  # socket -> STUN requests that arrived there
    received_bytes: int  # at every socket of the test
    denied_datagrams: int  # at the sockets on the denied network
    sent: dict[str, int]  # destination -> STUN messages aioice sent (also where no socket listens)


def key(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


async def hostile_offer_reach(server_ip: str, off_loopback: bool = False) -> Reach:
    """Publish an offer of 600 candidates to a node gathering on
    ``server_ip``: 300 at sockets on 300 loopback addresses, 100 at sockets
    on a denied network, 200 invalid ones; count what arrives where, once
    every check has run its course (retransmissions sped up so that takes
    about 2.5 s, not 40 s)."""
    use_host_address(server_ip)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aioice.stun, "RETRY_RTO", 0.02)
        sent = stun_sent(patch)
        changed = check_changes(patch)
        publisher, offer = await publisher_offer()
        targets, denied = (TARGETS_OFF_LOOPBACK, DENIED_OFF_LOOPBACK) if off_loopback else ("127.1.0.0/16", DENIED)
        with listeners(loopback_hosts(str(targets), 300) + loopback_hosts(str(denied), 100)) as sockets:
            invalid = list(INVALID_HOSTS.values())
            lines = [candidate(i, host, port) for i, (host, port) in enumerate(sockets.addresses)]
            lines += [candidate(400 + i, invalid[i % len(invalid)], 40000 + i) for i in range(200)]
            hostile = with_candidates(offer, lines)
            assert hostile.count("a=candidate:") == 600
            published, _answer = await PublishedStream.accept(
                stream_id="s1", offer_sdp=hostile, video_codec="VP8", ice_servers=[], candidates=POLICY
            )
            try:
                # Nothing more is sent once every check has run its course.
                await until(lambda: all_checks_done(published), changed, 30)
                sockets.drain()
            finally:
                await published.close()
                await publisher.close()
    return Reach(
        offer_bytes=len(hostile.encode()),
        valid=[key(address) for address in sockets.addresses[:300]],
        requests={key(address): len(requests) for address, requests in sockets.requests().items()},
        received_bytes=sum(len(data) for datagrams in sockets.received.values() for data in datagrams),
        denied_datagrams=sum(
            len(datagrams) for address, datagrams in sockets.received.items()
            if any(ipaddress.ip_address(address[0]) in network for network in (DENIED, DENIED_OFF_LOOPBACK))
        ),
        sent={key(address): count for address, count in sent.items()},
    )


def assert_bounded(reach: Reach) -> None:
    reached = set(reach.requests)
    assert 0 < len(reached) <= CAP, len(reached)
    assert reached <= set(reach.valid)
    assert reach.denied_datagrams == 0
    # Counted at the sender too: nowhere else, and every try of every check arrived.
    assert set(reach.sent) == reached, set(reach.sent) - reached
    assert sum(reach.sent.values()) == sum(reach.requests.values())
    tries = 1 + aioice.stun.RETRY_MAX
    assert max(reach.requests.values()) <= tries
    assert reach.received_bytes <= CAP * tries * 150, reach.received_bytes
    assert reach.received_bytes < reach.offer_bytes, (reach.received_bytes, reach.offer_bytes)


async def test_an_offer_of_600_candidates_reaches_at_most_the_cap_of_destinations(host_address: None) -> None:
    """On a loopback node: at most the cap of addresses, never a denied one,
    and in all fewer bytes than the offer itself."""
    assert_bounded(await hostile_offer_reach("127.0.0.1"))


def test_off_loopback_an_offer_of_600_candidates_reaches_at_most_the_cap_of_destinations() -> None:
    """The same with the node gathering on a real interface address (no
    loopback confinement), in a network namespace of the test's own."""
    with netns.machine() as machine:
        # Both target networks are local to the namespace, as 127/8 is.
        subprocess.run(machine.command("ip", "route", "add", "local", "10.240.0.0/15", "dev", "lo"), check=True)
        probe = subprocess.run(
            machine.command(sys.executable, "-m", "tests.rooms.media.test_ice_limits", machine.address, "off"),
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
    assert probe.returncode == 0, probe.stderr
    reach = Reach(**json.loads(probe.stdout.splitlines()[-1]))
    assert_bounded(reach)


async def test_a_play_offer_keeps_at_most_the_cap_of_destinations(host_address: None) -> None:
    use_host_address("127.0.0.1")
    publisher, offer = await publisher_offer()
    published, _ = await PublishedStream.accept(stream_id="s1", offer_sdp=offer, video_codec="VP8", ice_servers=[])
    player = loopback_peer()
    try:
        player.addTransceiver("video", direction="recvonly")
        player.addTransceiver("audio", direction="recvonly")
        await player.setLocalDescription(await player.createOffer())
        lines = [candidate(i, f"127.2.{i // 250}.{i % 250 + 1}", 40000 + i) for i in range(500)]
        lines += [candidate(500 + i, "224.0.0.251", 40000 + i) for i in range(100)]
        hostile = with_candidates(player.localDescription.sdp, lines)
        played, _ = await PlayedStream.accept(
            published=published, offer_sdp=hostile, video_codec="VP8", ice_servers=[], candidates=POLICY
        )
        destinations = remote_destinations(played.pc)
        assert len(destinations) == CAP
        assert all(host.startswith("127.2.") for host, _ in destinations)
    finally:
        await published.close()
        await player.close()
        await publisher.close()


async def test_checks_from_more_sources_than_the_cap_go_unanswered_and_unchecked(
    host_address: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An offer with no usable candidate (mDNS only): the node learns
    peer-reflexive candidates from checks, but from no more than the cap of
    sources, never from a denied one nor from checks without the
    credentials (those take no place and get no answer at all), and sends
    checks to no other."""
    use_host_address("127.0.0.1")
    monkeypatch.setattr(aioice.stun, "RETRY_RTO", 0.02)
    sent = stun_sent(monkeypatch)
    changed = check_changes(monkeypatch)
    cap = 4
    publisher, offer = await publisher_offer()
    hidden = with_candidates(offer, [candidate(1, "4f0c2a1e-7d1b.local", 50000)])
    denied, forgers, peers = 2, 10, 20
    hosts = loopback_hosts(str(DENIED), denied) + loopback_hosts("127.4.0.0/16", forgers)
    with listeners(hosts + loopback_hosts("127.3.0.0/16", peers)) as sockets:
        published, answer = await PublishedStream.accept(
            stream_id="s1", offer_sdp=hidden, video_codec="VP8", ice_servers=[],
            candidates=CandidatePolicy(max_remote_candidates=cap, denied_networks=(DENIED,)),
        )
        try:
            server = ("127.0.0.1", first_candidate_port(answer))
            for index, s in enumerate(sockets.sockets):
                forged = denied <= index < denied + forgers
                s.sendto(binding_request(answer, hidden, password="forged" * 4 if forged else None), server)
            # A check from a source already admitted is answered again: once
            # the last source's second check is answered, every first one has
            # been handled.
            last_admitted = sockets.sockets[denied + forgers + cap - 1]
            last_admitted.sendto(binding_request(answer, hidden), server)
            last = sockets.addresses[denied + forgers + cap - 1]
            async with asyncio.timeout(10):
                while _responses(sockets, last) < 2:
                    data = await asyncio.get_running_loop().sock_recv(last_admitted, 4096)
                    sockets.received.setdefault(last, []).append(data)
            await until(lambda: all_checks_done(published), changed, 30)
            sockets.drain()
        finally:
            await published.close()
            await publisher.close()

    answered = {address for address, datagrams in sockets.received.items()
                if any(aioice.stun.parse_message(d).message_class == aioice.stun.Class.RESPONSE for d in datagrams)}
    admitted = set(sockets.addresses[denied + forgers:denied + forgers + cap])
    assert answered == admitted
    assert set(sockets.received) == admitted  # nothing else, not even an error
    assert set(sockets.requests()) == admitted
    assert set(sent) == admitted


def _responses(sockets: Listeners, address: tuple[str, int]) -> int:
    return sum(
        aioice.stun.parse_message(data).message_class == aioice.stun.Class.RESPONSE
        for data in sockets.received.get(address, [])
    )


# --- settings ------------------------------------------------------------------------


def node_candidates(**environment: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import django; django.setup()\n"
        "from rooms.media.config import NodeConfig\n"
        "print(NodeConfig.from_settings().candidates)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "conference_site.settings", **environment},
    )


def test_the_node_reads_the_cap_and_the_deny_list_from_the_settings() -> None:
    default = node_candidates()
    configured = node_candidates(MEDIA_MAX_REMOTE_CANDIDATES="8", MEDIA_DENIED_PEER_NETWORKS="10.0.0.0/8, fd00::/8")

    assert "max_remote_candidates=16, denied_networks=()" in default.stdout, default.stderr
    assert "max_remote_candidates=8" in configured.stdout, configured.stderr
    assert "IPv4Network('10.0.0.0/8'), IPv6Network('fd00::/8')" in configured.stdout


@pytest.mark.parametrize("environment", [{"MEDIA_DENIED_PEER_NETWORKS": "10.0.0.0/8,intranet"},
                                         {"MEDIA_MAX_REMOTE_CANDIDATES": "0"}])
def test_a_bad_setting_stops_the_start(environment: dict[str, str]) -> None:
    result = node_candidates(**environment)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert next(iter(environment)) in result.stderr


if __name__ == "__main__":
    # The probe, run inside the namespace: python -m tests.rooms.media.test_ice_limits SERVER_IP off
    print(json.dumps(dataclasses.asdict(asyncio.run(hostile_offer_reach(sys.argv[1], off_loopback=True)))))
