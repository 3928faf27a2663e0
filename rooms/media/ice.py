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
"""

from __future__ import annotations

import ipaddress
from typing import Any

import aioice.ice
import aioice.stun
from aiortc import RTCPeerConnection


def check_aioice_internals() -> None:
    """Fail loudly if the installed aioice/aiortc moved what loopback confinement wraps."""
    from aiortc.rtcicetransport import RTCIceTransport

    uses_connection = "_connection" in RTCIceTransport.__init__.__code__.co_names
    if not hasattr(aioice.ice.Connection, "request_received") or not uses_connection:
        raise RuntimeError(
            "aioice/aiortc lack the ICE internals loopback confinement wraps; "
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


def is_mdns_name(host: str) -> bool:
    """Whether ``host`` is an mDNS name a browser put in place of its address."""
    return host.lower().rstrip(".").endswith(".local")


def offer_candidates_kept(sdp: str, *, loopback_only: bool) -> str:
    """``sdp`` with only the ``a=candidate`` lines the node can pair with.

    Loopback only: loopback addresses. Otherwise: every address literal, no
    mDNS names. When a candidate was dropped, ``a=end-of-candidates`` goes
    too: a remote without candidates left would otherwise fail ICE at once,
    before the browser's checks (peer-reflexive candidates) arrive.
    """

    def kept(line: str) -> bool:
        if not _is_candidate_line(line):
            return True
        address = _candidate_address(line)
        return is_loopback(address) if loopback_only else not is_mdns_name(address)

    lines = sdp.splitlines(keepends=True)
    candidates = [line for line in lines if kept(line)]
    if len(candidates) == len(lines):
        return sdp
    return "".join(line for line in candidates if not line.startswith("a=end-of-candidates"))


def answer_loopback_checks_only(pc: RTCPeerConnection) -> None:
    """Leave STUN checks to ``pc`` unanswered unless they come from loopback.

    Call it after the remote description is applied (every ICE transport
    exists then) and before the answer leaves (no check can arrive earlier).
    """
    for transport in _ice_transports(pc):
        connection = transport._connection
        answer = connection.request_received

        def request_received(
            message: aioice.stun.Message, addr: tuple[str, int], protocol: Any, answer: Any = answer
        ) -> None:
            if is_loopback(addr[0]):
                answer(message, addr, protocol)

        connection.request_received = request_received  # type: ignore[method-assign]


def _ice_transports(pc: RTCPeerConnection) -> set[Any]:
    transports = {transceiver.receiver.transport.transport for transceiver in pc.getTransceivers()}
    if pc.sctp is not None:
        transports.add(pc.sctp.transport.transport)
    return transports


def _is_candidate_line(line: str) -> bool:
    return line.startswith("a=candidate:")


def _candidate_address(line: str) -> str:
    # a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
    fields = line.split()
    return fields[4] if len(fields) > 4 else ""
