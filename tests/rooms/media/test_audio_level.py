"""The per-stream audio level read from RFC 6464 header extensions."""

from __future__ import annotations

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from rooms.media.audio_level import SILENCE_DBOV, AudioLevel, dbov_of_power
from rooms.media.tap import PacketByPacket

LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def test_a_steady_level_reads_as_itself() -> None:
    level = AudioLevel()
    for _ in range(12):
        level.packet(20)
    assert level.read(release_db=10) == 20


def test_no_packets_read_as_silence() -> None:
    assert AudioLevel().read(release_db=10) == SILENCE_DBOV


def test_the_mean_is_of_power_so_a_loud_half_dominates() -> None:
    level = AudioLevel()
    for _ in range(6):
        level.packet(10)
        level.packet(SILENCE_DBOV)
    # Half the packets at -10 dBov, half silent: half the power, 3 dB below.
    assert level.read(release_db=10) == 13


def test_a_level_rises_at_once_and_falls_by_the_release() -> None:
    level = AudioLevel()
    for _ in range(5):
        level.packet(20)
    assert level.read(release_db=10) == 20
    # Silence after speech: the level falls 10 dB per reading, not at once.
    assert [level.read(release_db=10) for _ in range(3)] == [30, 40, 50]
    level.packet(25)
    assert level.read(release_db=10) == 25
    for _ in range(20):
        level.read(release_db=10)
    assert level.read(release_db=10) == SILENCE_DBOV


def test_each_reading_covers_the_packets_since_the_last() -> None:
    level = AudioLevel()
    level.packet(0)
    assert level.read(release_db=127) == 0
    level.packet(40)
    assert level.read(release_db=127) == 40


def test_dbov_of_power_is_clamped() -> None:
    assert dbov_of_power(1.0) == 0
    assert dbov_of_power(2.0) == 0
    assert dbov_of_power(0.0) == SILENCE_DBOV
    assert dbov_of_power(1e-20) == SILENCE_DBOV


def test_the_audio_jitter_buffer_hands_each_packets_level_on() -> None:
    """A packet as it arrives from the wire: its header extension parsed with
    the negotiated id, its level handed to the stream's ``AudioLevel``."""
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=2, uri=LEVEL_URI)]))
    level = AudioLevel()
    buffer = PacketByPacket(level)
    for number, dbov in enumerate((30, 30, 30)):
        sent = RtpPacket(payload_type=111, sequence_number=number, timestamp=960 * number, payload=b"\x78")
        sent.extensions.audio_level = (False, dbov)
        packet = RtpPacket.parse(sent.serialize(extensions), extensions)
        packet._data = packet.payload  # type: ignore[attr-defined]
        buffer.add(packet)
    without = RtpPacket(payload_type=111, sequence_number=9, timestamp=0, payload=b"\x78")
    without._data = without.payload  # type: ignore[attr-defined]
    buffer.add(without)  # a packet without the extension counts for nothing
    assert level.read(release_db=10) == 30

