"""What a subscriber's RTCP says about its link: REMB estimates and loss.

A subscriber's receiver estimates the bitrate its link carries and sends it
as REMB (RTCP payload-specific feedback, format 15, "Receiver Estimated
Maximum Bitrate"): aiortc and Chromium do so from the
``abs-send-time`` header extension whenever the answer negotiates
``goog-remb``, as this node's answers do. Its receiver reports carry the
fraction of packets lost since the previous one. Transport-wide congestion
control (``transport-cc``) is not offered: aiortc neither sends nor reads
its feedback, so browsers fall back to REMB.

``feedback_watch`` wraps the sender's ``_handle_rtcp_packet`` (called once
per RTCP packet the subscriber sends, a few a second): nothing is done per
RTP packet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpRrPacket, RtcpSrPacket, unpack_remb_fci

logger = logging.getLogger(__name__)

# (bitrate in bit/s) for each REMB naming this sender's SSRC.
EstimateCallback = Callable[[int], None]
# (fraction lost, 0-1) for each reception report about this sender's SSRC.
LossCallback = Callable[[float], None]


def remb_bitrate(packet: Any, ssrc: int) -> int | None:
    """The bitrate a REMB packet gives for ``ssrc``; None for any other packet."""
    if not (isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP):
        return None
    try:
        bitrate, ssrcs = unpack_remb_fci(packet.fci)
    except ValueError:
        return None  # an application-layer feedback that is not REMB
    return bitrate if ssrc in ssrcs else None


def fraction_lost(packet: Any, ssrc: int) -> float | None:
    """The fraction lost a receiver or sender report gives for ``ssrc``; None if it has none."""
    if not isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
        return None
    for report in packet.reports:
        if report.ssrc == ssrc:
            return float(report.fraction_lost) / 256
    return None


def feedback_watch(sender: RTCRtpSender, *, on_estimate: EstimateCallback, on_loss: LossCallback) -> None:
    """Call ``on_estimate`` / ``on_loss`` with what the subscriber of ``sender`` reports."""
    handle = sender._handle_rtcp_packet

    async def handle_watched(packet: Any) -> None:
        try:
            bitrate = remb_bitrate(packet, sender._ssrc)
            if bitrate is not None:
                on_estimate(bitrate)
            lost = fraction_lost(packet, sender._ssrc)
            if lost is not None:
                on_loss(lost)
        except Exception:
            # The sender's RTCP handling (NACK, PLI) must go on regardless.
            logger.exception("a receiver feedback watcher failed")
        await handle(packet)

    sender._handle_rtcp_packet = handle_watched  # type: ignore[method-assign]
