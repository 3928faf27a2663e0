"""Which of a browser's ICE candidates the media node pairs with.

By default the node gathers on every interface address and answers checks
from any address that completes ICE, learning peer-reflexive candidates
from them (RFC 8445 7.3.1.3). That is also how a browser that hides its
addresses behind mDNS names (``<uuid>.local``) connects: resolving those
names needs multicast DNS on the path, and aioice waits up to a second per
offer for an answer that often never comes, so the node drops them and
lets the browser's own checks tell it where the browser is.

With ``MEDIA_HOST_IP`` on loopback (tests, benchmarks) the server gathers
only 127.0.0.1, but a browser also offers its
network-interface address and sends connectivity checks from it. aioice
answers checks from any source (learning peer-reflexive candidates), so the
pair that won was interface address → 127.0.0.1: media left loopback. A
server that gathers only loopback can only be meant to talk to loopback, so
it drops the offer's other candidates and leaves checks from other sources
unanswered; the browser then selects 127.0.0.1 → 127.0.0.1.

Everywhere, an offer names the addresses the node sends connectivity
checks to, and aioice also sends checks to every address a check came
from. Left alone, a 600-candidate offer made the node send STUN to 600
destinations: a scanner and reflector driven by anyone who may publish.
So an offer keeps only candidates at valid unicast addresses outside the
operator's denied networks, at most ``CandidatePolicy.max_remote_candidates``
destinations of them, and each peer connection answers checks only from
those destinations or, while fewer than the cap are known, from one more
(a peer-reflexive candidate): the node never sends to more destinations
per peer connection than the cap.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import aioice.ice
import aioice.stun
from aiortc import RTCPeerConnection


def check_aioice_internals() -> None:
    """Fail loudly if the installed aioice/aiortc moved what ``confine_checks`` wraps and reads."""
    from aiortc.rtcicetransport import RTCIceTransport

    uses_connection = "_connection" in RTCIceTransport.__init__.__code__.co_names
    connection = aioice.ice.Connection
    keeps_candidates = "_remote_candidates" in connection.__init__.__code__.co_names
    canonical_hosts = "_network_host" in connection.check_incoming.__code__.co_names
    wrapped = all(hasattr(connection, name) for name in ("request_received", "_valid_username", "data_received"))
    if not (wrapped and uses_connection and keeps_candidates and canonical_hosts):
        raise RuntimeError(
            "aioice/aiortc lack the ICE internals the media node wraps; "
            "install the pinned versions from requirements.txt"
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback IP literal (an mDNS name is not)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def gathers_loopback_only() -> bool:
    """Whether this process gathers ICE candidates on loopback addresses only.

    Read from aioice itself, which ``use_host_address`` configures, so the
    answer follows whatever address candidates are really gathered on.
    """
    addresses = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True)
    return bool(addresses) and all(is_loopback(address) for address in addresses)


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# "This network" (RFC 1122 3.2.1.3): no host answers there; the kernel may
# send 0.x.y.z to the local machine.
THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


@dataclass(frozen=True)
class CandidatePolicy:
    """Which remote addresses a peer connection may send checks to."""

    # Distinct destinations (address, port) per offer and per peer connection.
    max_remote_candidates: int = 16
    # Networks no check goes to (an operator's internal networks).
    denied_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_strings(cls, *, max_remote_candidates: int, denied_networks: Sequence[str]) -> CandidatePolicy:
        return cls(
            max_remote_candidates=max_remote_candidates,
            denied_networks=tuple(ipaddress.ip_network(network.strip()) for network in denied_networks),
        )

    def allows(self, host: str) -> bool:
        """Whether checks may go to ``host``: a unicast IP literal outside the denied networks."""
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False  # mDNS and other names: see the module's docstring
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            # ::ffff:a.b.c.d reaches a.b.c.d: judge that address.
            address = address.ipv4_mapped
        if address.is_multicast or address.is_unspecified or address == LIMITED_BROADCAST:
            return False
        if address in THIS_NETWORK:
            return False
        return not any(address in network for network in self.denied_networks)


DEFAULT_CANDIDATE_POLICY = CandidatePolicy()


def offer_candidates_kept(sdp: str, *, loopback_only: bool, policy: CandidatePolicy = DEFAULT_CANDIDATE_POLICY) -> str:
    """``sdp`` with only the ``a=candidate`` lines the node may send checks to.

    Loopback only: loopback addresses. Otherwise: every address literal but
    loopback ones, no mDNS or other names. Either way only UDP candidates at addresses ``policy``
    allows, and of those at most ``policy.max_remote_candidates`` distinct
    destinations across the whole offer, the highest priorities first (a
    destination repeated in another m-section counts once). When a
    candidate was dropped, ``a=end-of-candidates`` goes too: a remote
    without candidates left would otherwise fail ICE at once, before the
    browser's checks (peer-reflexive candidates) arrive.
    """
    lines = sdp.splitlines(keepends=True)
    eligible: dict[tuple[str, int], int] = {}  # destination -> its highest priority
    for line in lines:
        candidate = _candidate(line)
        if candidate is None:
            continue
        destination, priority = candidate
        address = destination[0]
        # A node on real interfaces never aims checks at the machine's own
        # loopback services because an offer names them.
        if is_loopback(address) != loopback_only:
            continue
        if not policy.allows(address):
            continue
        eligible[destination] = max(priority, eligible.get(destination, priority))
    ranked = sorted(eligible, key=lambda destination: -eligible[destination])
    destinations = set(ranked[: policy.max_remote_candidates])

    def kept(line: str) -> bool:
        if not _is_candidate_line(line):
            return True
        candidate = _candidate(line)
        return candidate is not None and candidate[0] in destinations

    kept_lines = [line for line in lines if kept(line)]
    if len(kept_lines) == len(lines):
        return sdp
    return "".join(line for line in kept_lines if not line.startswith("a=end-of-candidates"))


def confine_checks(
    pc: RTCPeerConnection, *, loopback_only: bool, policy: CandidatePolicy = DEFAULT_CANDIDATE_POLICY
) -> None:
    """Leave STUN checks to ``pc`` unanswered unless their source may be sent to.

    aioice answers a check from any source and then checks that source
    itself (a peer-reflexive candidate), retransmitting. So a check is
    answered only from a destination ``pc`` already has (the offer's
    candidates, or one learned before), or from a new one while ``pc`` has
    fewer than ``policy.max_remote_candidates`` and the check carries
    ``pc``'s credentials; always from an address ``policy`` allows and, when
    the node gathers on loopback only, from loopback. The destinations are
    shared by all of ``pc``'s ICE transports.

    It also drops empty datagrams (see ``_nonempty_only``).

    Call it after the remote description is applied (every ICE transport
    exists then, with the offer's candidates) and before the answer leaves
    (no check can arrive earlier).
    """
    transports = _ice_transports(pc)
    destinations = {
        (candidate._network_host, candidate.port)
        for transport in transports
        for candidate in transport._connection._remote_candidates
    }

    def admitted(connection: aioice.ice.Connection, message: aioice.stun.Message, addr: tuple[str, int]) -> bool:
        destination = (addr[0], addr[1])
        if destination in destinations:
            return True
        if loopback_only and not is_loopback(addr[0]):
            return False
        if not policy.allows(addr[0]) or len(destinations) >= policy.max_remote_candidates:
            return False
        # Only the peer's own checks may take a place: anyone else's (a
        # scanner's, a forged one) would fill the places and leave the
        # peer's checks unanswered. They get no 401 either.
        if not _authenticated(connection, message):
            return False
        destinations.add(destination)
        return True

    for transport in transports:
        connection = transport._connection
        answer = connection.request_received

        def request_received(
            message: aioice.stun.Message,
            addr: tuple[str, int],
            protocol: Any,
            answer: Any = answer,
            connection: aioice.ice.Connection = connection,
        ) -> None:
            if admitted(connection, message, addr):
                answer(message, addr, protocol)

        connection.request_received = request_received  # type: ignore[method-assign]
        connection.data_received = _nonempty_only(connection.data_received)  # type: ignore[method-assign]


def _nonempty_only(deliver: Any) -> Any:
    """Drop empty datagrams before they reach DTLS.

    aioice hands every datagram that is not STUN to the transport above,
    from any source, and aiortc's DTLS reads its first byte: one empty UDP
    datagram from anyone ended the peer connection (an IndexError stopped
    its receive loop). Other garbage is refused by DTLS and SRTP themselves.
    """

    def data_received(data: bytes, component: int) -> None:
        if data:
            deliver(data, component)

    return data_received


def _authenticated(connection: aioice.ice.Connection, message: aioice.stun.Message) -> bool:
    """Whether ``message`` is a binding request signed with ``connection``'s
    credentials, as aioice itself checks before answering (RFC 8489 9.1.3)."""
    return (
        message.message_method == aioice.stun.Method.BINDING
        and "USERNAME" in message.attributes
        and "MESSAGE-INTEGRITY" in message.attributes
        and connection._valid_username(message.attributes["USERNAME"])
        and message.check_message_integrity(connection.local_password.encode("utf8"))
    )


def _ice_transports(pc: RTCPeerConnection) -> set[Any]:
    transports = {
        transceiver.receiver.transport.transport
        for transceiver in pc.getTransceivers()
        if transceiver.receiver.transport is not None
    }
    if pc.sctp is not None:
        transports.add(pc.sctp.transport.transport)
    return transports


def _is_candidate_line(line: str) -> bool:
    return line.startswith("a=candidate:")


def _candidate(line: str) -> tuple[tuple[str, int], int] | None:
    """The destination (address, port) and priority of a UDP candidate line, else None."""
    if not _is_candidate_line(line):
        return None
    # a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
    fields = line.split()
    if len(fields) < 6 or fields[1] != "1" or fields[2].lower() != "udp":
        return None  # the node's ICE has one component (RTP and RTCP muxed) and gathers UDP only
    try:
        priority, port = int(fields[3]), int(fields[5])
    except ValueError:
        return None
    if not 0 < port < 65536:
        return None
    address = fields[4]
    with suppress(ValueError):
        address = str(ipaddress.ip_address(address))  # the form aioice compares sources in
    return (address, port), priority


def answer_addresses_public(sdp: str, public_ip: str) -> str:
    """``sdp`` (the node's answer) with its host candidates at ``public_ip``.

    Behind a 1:1 NAT the node gathers on its private address, which no
    client outside can reach; the NAT maps the public address to it port
    for port. So the answer names the public address where it named a
    private one of the same family, as Janus' ``nat_1_1_mapping`` does:
    the client's checks go to the public address and the NAT carries them
    in. The ports stay as gathered (``MEDIA_UDP_PORTS`` is the range to
    forward).
    """
    if not public_ip:
        return sdp
    public = ipaddress.ip_address(public_ip)
    replaced: set[str] = set()
    lines = sdp.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if not _is_candidate_line(line):
            continue
        fields = line.split(" ")
        if len(fields) < 8 or fields[6] != "typ" or fields[7].strip() != "host":
            continue
        try:
            address = ipaddress.ip_address(fields[4])
        except ValueError:
            continue
        if address.version != public.version or address == public:
            continue
        replaced.add(fields[4])
        fields[4] = public_ip
        lines[index] = " ".join(fields)
    for index, line in enumerate(lines):
        # The connection line names the default candidate's address.
        fields = line.rstrip("\r\n").split(" ")
        if line.startswith("c=IN ") and len(fields) == 3 and fields[2] in replaced:
            lines[index] = line.replace(fields[2], public_ip)
    return "".join(lines)
