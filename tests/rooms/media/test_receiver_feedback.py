"""A subscriber's RTCP read for congestion (rooms.media.receiver_feedback): REMB
and reception reports, parsed from the bytes aiortc and browsers send."""

from __future__ import annotations

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    pack_remb_fci,
)

from rooms.media.receiver_feedback import fraction_lost, remb_bitrate

SSRC = 0x1234ABCD


def parsed(packet: object) -> object:
    """The packet as the node gets it: serialized, then parsed by aiortc."""
    (back,) = RtcpPacket.parse(bytes(packet))  # type: ignore[call-overload]
    return back


def test_a_remb_naming_the_leg_gives_its_bitrate() -> None:
    remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(287_500, [99, SSRC]))
    # REMB's mantissa has 18 bits: 287 500 is kept exactly.
    assert remb_bitrate(parsed(remb), SSRC) == 287_500
    assert remb_bitrate(parsed(remb), 42) is None  # another sender's
    pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=SSRC)
    assert remb_bitrate(parsed(pli), SSRC) is None
    # An application-layer feedback that is not REMB.
    other = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=b"ABCD\x00\x00\x00\x00")
    assert remb_bitrate(parsed(other), SSRC) is None


def test_a_reception_report_about_the_leg_gives_its_loss() -> None:
    report = RtcpReceiverInfo(ssrc=SSRC, fraction_lost=64, packets_lost=10, highest_sequence=1000, jitter=0,
                              lsr=0, dlsr=0)
    other = RtcpReceiverInfo(ssrc=7, fraction_lost=255, packets_lost=1, highest_sequence=1, jitter=0, lsr=0, dlsr=0)
    rr = RtcpRrPacket(ssrc=1, reports=[other, report])
    assert fraction_lost(parsed(rr), SSRC) == 0.25
    assert fraction_lost(parsed(RtcpRrPacket(ssrc=1, reports=[other])), SSRC) is None
