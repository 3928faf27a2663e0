"""The start-up check of the aiortc internals the tap relies on."""

import pytest

from rooms.media.keyframes import is_keyframe
from rooms.media.tap import check_aiortc_internals


def test_installed_aiortc_passes() -> None:
    check_aiortc_internals()


def test_a_receiver_without_the_decoder_queue_is_refused() -> None:
    class OtherReceiver:
        def __init__(self) -> None:
            self.queue = None

        async def _send_rtcp_pli(self, media_ssrc: int) -> None: ...

    with pytest.raises(RuntimeError, match="pinned aiortc"):
        check_aiortc_internals(OtherReceiver)


@pytest.mark.parametrize(
    ("codec", "data", "expected"),
    [
        ("VP8", bytes([0x10, 0x02, 0x00]), True),  # frame tag bit 0 clear: key frame
        ("VP8", bytes([0x11, 0x02, 0x00]), False),
        ("H264", b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x65\x88", True),  # SPS + IDR
        ("H264", b"\x00\x00\x00\x01\x41\x9a", False),  # non-IDR slice
        ("opus", b"\x78", True),
        ("VP8", b"", False),
    ],
)
def test_keyframe_detection(codec: str, data: bytes, expected: bool) -> None:
    assert is_keyframe(codec, data) is expected


def test_audio_packets_pass_one_by_one_without_waiting_for_the_next() -> None:
    from aiortc.rtp import RtpPacket

    from rooms.media.tap import PacketByPacket

    buffer = PacketByPacket()
    for number in range(3):
        packet = RtpPacket(payload_type=111, sequence_number=100 + number, timestamp=960 * number)
        packet._data = bytes([number])  # type: ignore[attr-defined]
        pli, frame = buffer.add(packet)
        assert pli is False and frame is not None
        assert frame.data == bytes([number]) and frame.timestamp == 960 * number
