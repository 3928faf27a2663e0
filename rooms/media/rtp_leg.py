"""``RtpLeg``: a subscriber's RTP output, written by the fan-out instead of aiortc's sender loop.

aiortc negotiates the leg (SDP, ICE, DTLS, its SSRC, payload type, header
extensions) and keeps running its RTCP side: sender reports from the
counters this adapter keeps up to date, answers to the subscriber's
feedback. What it no longer does is fetch a frame per subscriber through a
coroutine and a queue and send it one ``await`` per packet: the
publisher's fan-out (``rooms.media.fanout``) hands each leg the frame's
payloads, and the leg writes the RTP headers, protects each packet with the
leg's SRTP session and sends the frame's packets to the selected ICE pair
together (``rooms.media.udp_batch``).

This reaches into aiortc 1.16.0 and aioice 0.13.0 internals (name-mangled
sender counters, the DTLS transport's SRTP session, the ICE connection's
nominated pair): ``check_leg_internals`` refuses to start on other versions.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Sequence
from typing import Any

import aioice
import aioice.ice
import aiortc
from aiortc import RTCRtpSender, clock
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions, HeaderExtensionsMap
from aiortc.utils import random32

from rooms.media.udp_batch import DatagramBatchSender

logger = logging.getLogger(__name__)

AIORTC_VERSION = "1.16.0"
AIOICE_VERSION = "0.13.0"

_PREFIX = "_RTCRtpSender__"
_SENDER_ATTRIBUTES = (
    "packet_count", "octet_count", "ntp_timestamp", "rtp_timestamp", "mid", "rtp_header_extensions_map",
    "rtx_payload_type", "rtp_started", "rtp_exited",
)
_HEADER = struct.Struct("!BBHLL")
_EXTENSION_HEADER = struct.Struct("!HH")
_SEQUENCE = struct.Struct("!H")

# Called with each RTCP packet a subscriber sends on a leg (REMB, receiver reports, ...).
FeedbackWatcher = Callable[[Any], None]
# The per-frame header extensions of a leg: key -> (extension header bytes).
ExtensionCache = dict[tuple[Any, ...], bytes]


def check_leg_internals() -> None:
    """Fail loudly unless aiortc and aioice are the versions whose internals ``RtpLeg`` uses."""
    versions = (getattr(aiortc, "__version__", "?"), getattr(aioice, "__version__", "?"))
    if versions != (AIORTC_VERSION, AIOICE_VERSION):
        raise RuntimeError(
            f"the media node's RTP fan-out is written for aiortc {AIORTC_VERSION} and aioice {AIOICE_VERSION}, "
            f"found aiortc {versions[0]} and aioice {versions[1]}; install the pinned versions from requirements.txt"
        )
    names = set(RTCRtpSender.__init__.__code__.co_names)
    missing = [_PREFIX + name for name in _SENDER_ATTRIBUTES if _PREFIX + name not in names]
    missing += [name for name in ("_run_rtp", "_retransmit", "_handle_rtcp_packet") if not hasattr(RTCRtpSender, name)]
    if missing:
        raise RuntimeError(f"aiortc {versions[0]} lacks the sender internals the fan-out uses: {', '.join(missing)}")


class RtpLeg:
    """The RTP output of one ``RTCRtpSender`` whose track is the publisher's fan-out."""

    def __init__(self, sender: RTCRtpSender, on_ready: Callable[[RtpLeg], None]) -> None:
        self.sender = sender
        self.ssrc = sender._ssrc
        self.payload_type = 0
        self.ready = False
        self.closed = False
        self._on_ready = on_ready
        self._sequence = random_sequence_number()
        self._timestamp_origin = random32()
        self._rtx_sequence = random_sequence_number()
        # The last packets sent, for NACKs: (sequence, timestamp, marker, payload);
        # the payload bytes are the fan-out's, shared by every leg.
        self._history: list[tuple[int, int, int, bytes] | None] = [None] * RTP_HISTORY_SIZE
        self._extension_key: tuple[Any, ...] = ()
        self._extensions_map = HeaderExtensionsMap()
        self._mid: str | None = None
        self._batch: DatagramBatchSender | None = None
        self._batch_protocol: Any = None
        self._slow_sends: set[asyncio.Future[None]] = set()
        self._feedback: list[FeedbackWatcher] = []
        # Packets sent again on a NACK (each its own datagram).
        self.retransmitted = 0
        self._idle: asyncio.Future[None] | None = None
        # aiortc's send() starts the sender loop once the transport is up:
        # the loop we put in its place only says the leg can send.
        sender._run_rtp = self._run_rtp  # type: ignore[method-assign]
        sender._retransmit = self._retransmit  # type: ignore[method-assign]
        handle = sender._handle_rtcp_packet

        async def handle_watched(packet: Any) -> None:
            for watcher in tuple(self._feedback):
                try:
                    watcher(packet)
                except Exception:
                    logger.exception("an RTCP feedback watcher failed")
            await handle(packet)

        sender._handle_rtcp_packet = handle_watched  # type: ignore[method-assign]

    def feedback_watch(self, watcher: FeedbackWatcher) -> None:
        """Call ``watcher`` with each RTCP packet the subscriber sends about this leg."""
        self._feedback.append(watcher)

    # --- aiortc's side ------------------------------------------------------------------

    async def _run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        sender = self.sender
        self.payload_type = codec.payloadType or 0
        self._mid = getattr(sender, _PREFIX + "mid")
        self._extensions_map = getattr(sender, _PREFIX + "rtp_header_extensions_map")
        ids = getattr(self._extensions_map, "_HeaderExtensionsMap__ids", None)
        self._extension_key = (self._mid, getattr(ids, "mid", None), getattr(ids, "abs_send_time", None))
        getattr(sender, _PREFIX + "rtp_started").set()
        self._idle = asyncio.get_running_loop().create_future()
        self.ready = True
        try:
            self._on_ready(self)
        except Exception:
            logger.exception("a leg's ready hook failed")
        try:
            await self._idle
        except asyncio.CancelledError:
            pass
        finally:
            self.ready = False
            getattr(sender, _PREFIX + "rtp_exited").set()

    async def _retransmit(self, sequence_number: int) -> None:
        entry = self._history[sequence_number % RTP_HISTORY_SIZE]
        if entry is None or entry[0] != sequence_number or not self._can_send():
            return
        _, timestamp, marker, payload = entry
        rtx_payload_type = getattr(self.sender, _PREFIX + "rtx_payload_type")
        extensions = self._extensions(_abs_send_time(), {})
        if rtx_payload_type is not None:
            sequence, self._rtx_sequence = self._rtx_sequence, (self._rtx_sequence + 1) & 0xFFFF
            packet = _packet(extensions, marker, rtx_payload_type, sequence, timestamp, self.sender._rtx_ssrc,
                             _SEQUENCE.pack(sequence_number) + payload)
        else:
            packet = _packet(extensions, marker, self.payload_type, sequence_number, timestamp, self.ssrc, payload)
        self.retransmitted += 1
        self._send([self.sender.transport._tx_srtp.protect(packet)])

    # --- the fan-out's side -------------------------------------------------------------

    def send_frame(self, payloads: Sequence[bytes], timestamp: int, abs_send_time: int, ntp_time: int,
                   extensions: ExtensionCache) -> bool:
        """Send one frame's payloads; False when the leg cannot send (not connected, closed)."""
        if not self._can_send():
            return False
        header = self._extensions(abs_send_time, extensions)
        protect = self.sender.transport._tx_srtp.protect
        timestamp = (self._timestamp_origin + timestamp) & 0xFFFFFFFF
        history = self._history
        sequence = self._sequence
        ssrc = self.ssrc
        last = len(payloads) - 1
        datagrams = []
        octets = 0
        for index, payload in enumerate(payloads):
            marker = 1 if index == last else 0
            history[sequence % RTP_HISTORY_SIZE] = (sequence, timestamp, marker, payload)
            datagrams.append(protect(_packet(header, marker, self.payload_type, sequence, timestamp, ssrc, payload)))
            octets += len(payload)
            sequence = (sequence + 1) & 0xFFFF
        self._sequence = sequence
        self._send(datagrams)
        sender = self.sender
        # What aiortc's RTCP loop puts in its sender reports, and the node's meter reads.
        setattr(sender, _PREFIX + "packet_count", getattr(sender, _PREFIX + "packet_count") + len(datagrams))
        setattr(sender, _PREFIX + "octet_count", getattr(sender, _PREFIX + "octet_count") + octets)
        setattr(sender, _PREFIX + "ntp_timestamp", ntp_time)
        setattr(sender, _PREFIX + "rtp_timestamp", timestamp)
        return True

    def sends(self) -> tuple[int, int]:
        """System calls made and datagrams sent on the current ICE pair's socket."""
        batch = self._batch
        return (0, 0) if batch is None else (batch.calls, batch.datagrams)

    def close(self) -> None:
        self.closed = True
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    # --- internals ----------------------------------------------------------------------

    def _can_send(self) -> bool:
        return self.ready and not self.closed and self.sender.transport.state == "connected"

    def _extensions(self, abs_send_time: int, cache: ExtensionCache) -> bytes:
        """The header extension block (with its 4-byte header), computed once per frame
        for all legs that negotiated the same extensions and mid."""
        key = self._extension_key
        block = cache.get(key)
        if block is None:
            values = HeaderExtensions(mid=self._mid, abs_send_time=abs_send_time)
            profile, value = self._extensions_map.set(values)
            block = _EXTENSION_HEADER.pack(profile, len(value) >> 2) + value if value else b""
            cache[key] = block
        return block

    def _send(self, datagrams: list[bytes]) -> None:
        connection = self.sender.transport.transport._connection
        pair = connection._nominated.get(1)
        if pair is None:
            return
        protocol = pair.protocol
        transport = getattr(protocol, "transport", None)
        if type(protocol) is aioice.ice.StunProtocol and transport is not None and not transport.is_closing():
            if transport.get_write_buffer_size():
                # asyncio holds datagrams for this socket: keep their order.
                for datagram in datagrams:
                    transport.sendto(datagram, pair.remote_addr)
                return
            if self._batch_protocol is not protocol:
                self._batch = DatagramBatchSender(transport._sock)
                self._batch_protocol = protocol
            assert self._batch is not None
            self._batch.send(datagrams, pair.remote_addr)
            return
        # A relayed pair (TURN) wraps each datagram: its own, asynchronous path.
        task = asyncio.ensure_future(_send_each(connection, datagrams))
        self._slow_sends.add(task)
        task.add_done_callback(self._slow_sends.discard)


async def _send_each(connection: aioice.ice.Connection, datagrams: list[bytes]) -> None:
    for datagram in datagrams:
        try:
            await connection.sendto(datagram, 1)
        except ConnectionError:
            return


def _packet(extensions: bytes, marker: int, payload_type: int, sequence: int, timestamp: int, ssrc: int,
            payload: bytes) -> bytes:
    return _HEADER.pack(0x90 if extensions else 0x80, (marker << 7) | payload_type, sequence, timestamp,
                        ssrc) + extensions + payload


def abs_send_time(ntp_time: int) -> int:
    """The abs-send-time header extension's value (6.18 fixed-point seconds) of an NTP time."""
    return (ntp_time >> 14) & 0x00FFFFFF


def _abs_send_time() -> int:
    return abs_send_time(clock.current_ntp_time())
