"""NACKs a node sends to publishers and gets from subscribers, counted off the packet path.

aiortc answers and sends NACKs (RFC 4585 generic feedback) but counts
neither. ``NackCount`` wraps the two places they pass, both on the RTCP
side: a receiver's ``_send_rtcp_nack`` (called only when a publisher's
packets went missing) and a sender's ``_handle_rtcp_packet`` (called once
per RTCP packet a subscriber sends, a few a second). Each adds to plain
integers that the node's meter reads once per heartbeat
(``rooms.media.metering``); nothing is done per RTP packet.
"""

from __future__ import annotations

from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket


class NackCount:
    def __init__(self) -> None:
        # NACK messages, and the packets they named as lost.
        self.messages = 0
        self.packets = 0

    def add(self, lost: list[int]) -> None:
        self.messages += 1
        self.packets += len(lost)

    def watch_receiver(self, receiver: RTCRtpReceiver) -> None:
        """Count the NACKs ``receiver`` sends to its publisher."""
        send = receiver._send_rtcp_nack

        async def send_counted(media_ssrc: int, lost: list[int]) -> None:
            self.add(lost)
            await send(media_ssrc, lost)

        receiver._send_rtcp_nack = send_counted  # type: ignore[method-assign]

    def watch_sender(self, sender: RTCRtpSender) -> None:
        """Count the NACKs ``sender``'s subscriber sends it."""
        handle = sender._handle_rtcp_packet

        async def handle_counted(packet: Any) -> None:
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                self.add(packet.lost)
            await handle(packet)

        sender._handle_rtcp_packet = handle_counted  # type: ignore[method-assign]
