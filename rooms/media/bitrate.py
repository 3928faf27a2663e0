"""A room's video bitrate cap, told to each publisher by REMB.

REMB (RTCP PSFB, format 15, "Receiver Estimated Maximum Bitrate") is the
receiver's way of telling a sender how fast it may send; Chromium takes it
as an upper bound when ``goog-remb`` is negotiated, and aiortc's sender sets
its encoder's ``target_bitrate`` from it. The cap applies to each published
video stream on its own (not shared among a room's publishers): a room of
n cameras carries at most n times the cap.

aiortc's receiver sends REMB by itself, from its bandwidth estimator, when
the estimate changes; those are clamped to the cap here, and the cap (or the
last estimate, when lower: congestion wins) is repeated every second, so a
publisher that missed one, or reset its encoder, is capped again within a
second.

``limit_bps`` is what the publisher's subscribers can take
(``rooms.media.congestion_control``): set, it lowers what is told, and a
fall is told at once rather than at the next beat. ``floor_bps``
(``ROOM_MIN_VIDEO_KBPS``) bounds what is told from below, the node's own
estimate included: on a busy machine aiortc's estimator reads its own
scheduling delays as a congested uplink, and a publisher whose uplink is
really congested lowers its rate by itself (REMB is only an upper bound).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

logger = logging.getLogger(__name__)

REMB_INTERVAL_S = 1.0
_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
_SETTLED_STATES = ("connected", "closed", "failed")


class BitrateCap:
    """Keeps one publisher's video at or under ``cap_bps``."""

    def __init__(self, receiver: RTCRtpReceiver, media_ssrc: int, cap_bps: int,
                 interval_s: float = REMB_INTERVAL_S, floor_bps: int = 0) -> None:
        # 0: no cap of its own (only the estimate and the subscribers' limit).
        self.cap_bps = cap_bps
        self.floor_bps = floor_bps
        self.limit_bps: int | None = None
        self.sent = 0
        self._receiver = receiver
        self._media_ssrc = media_ssrc
        self._interval_s = interval_s
        self._estimate_bps: int | None = None
        self._send: Callable[[Any], Awaitable[None]] = receiver._send_rtcp
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    @classmethod
    def install(cls, receiver: RTCRtpReceiver, media_ssrc: int, cap_bps: int,
                interval_s: float = REMB_INTERVAL_S, floor_bps: int = 0) -> BitrateCap:
        cap = cls(receiver, media_ssrc, cap_bps, interval_s, floor_bps)
        receiver._send_rtcp = cap._send_clamped  # type: ignore[method-assign]
        cap._task = asyncio.get_running_loop().create_task(cap._repeat(), name="remb-cap")
        return cap

    def bitrate_bps(self) -> int | None:
        """What the publisher is told: the lowest of the cap, the subscribers'
        limit and the node's own estimate, but not under the floor (nor over
        the cap); None when none of them is known."""
        figures = [figure for figure in (self.cap_bps or None, self.limit_bps, self._estimate_bps) if figure]
        if not figures:
            return None
        told = max(min(figures), self.floor_bps)
        return min(told, self.cap_bps) if self.cap_bps else told

    def limit(self, bps: int | None) -> None:
        """Set what the subscribers can take (None: no limit); a fall is told at once."""
        before = self.bitrate_bps()
        self.limit_bps = bps
        after = self.bitrate_bps()
        if after is not None and (before is None or after < before):
            self._send_soon()

    def _send_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self.send_now(), name="remb-now")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_clamped(self, packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                estimate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                pass
            else:
                self._estimate_bps = estimate
                packet.fci = pack_remb_fci(self.bitrate_bps() or estimate, ssrcs)
        await self._send(packet)

    async def _repeat(self) -> None:
        # The first REMB as soon as the publisher can hear it: until then
        # its encoder runs at its own default (aiortc's VP8: 500 kbit/s),
        # and a REMB sent before DTLS is up is dropped unseen.
        if not await self._transport_connected():
            return
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            await self.send_now()
            # On a fixed beat rather than a pause after each send, so a busy
            # loop does not stretch the interval; a late beat is not caught up.
            due = max(due + self._interval_s, loop.time())
            await asyncio.sleep(due - loop.time())

    async def _transport_connected(self) -> bool:
        transport = self._receiver.transport
        settled = asyncio.Event()

        def on_state() -> None:
            if transport.state in _SETTLED_STATES:
                settled.set()

        transport.on("statechange", on_state)
        try:
            on_state()
            await settled.wait()
        finally:
            transport.remove_listener("statechange", on_state)
        return bool(transport.state == "connected")

    async def send_now(self) -> None:
        rtcp_ssrc = getattr(self._receiver, _RTCP_SSRC, None)
        bitrate = self.bitrate_bps()
        if rtcp_ssrc is None or bitrate is None:
            return  # the transport is not up yet, or there is nothing to tell
        packet = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
            fci=pack_remb_fci(bitrate, [self._media_ssrc]),
        )
        try:
            await self._send(packet)
        except Exception:
            logger.exception("sending REMB to the publisher failed")
            return
        self.sent += 1

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
