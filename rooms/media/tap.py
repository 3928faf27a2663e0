"""Encoded-frame tap on an aiortc receiver.

``RTCRtpReceiver`` puts every reassembled encoded frame on a private queue
read by its decoder thread. ``EncodedFrameTap`` takes that queue's place:
``put`` (called on the event loop for each frame) hands the frame to the
sinks instead, and ``get`` (the decoder thread's read) only waits for the
stop signal, so nothing is ever decoded.

The queue must be swapped before ``RTCRtpReceiver.receive`` starts the
decoder thread (it keeps the object it starts with), that is right after
the transceiver exists and before ``setLocalDescription``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtcpSrPacket, RtpPacket

from rooms.media.audio_level import AudioLevel

logger = logging.getLogger(__name__)

FrameSink = Callable[[RTCRtpCodecParameters, JitterFrame], None]

_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_TIMESTAMP_MAPPER = "_RTCRtpReceiver__timestamp_mapper"
_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"  # read by rooms.media.bitrate


def check_aiortc_internals(receiver_class: type = RTCRtpReceiver) -> None:
    """Fail loudly if the installed aiortc moved the attributes the tap uses."""
    source = getattr(vars(receiver_class).get("__init__"), "__code__", None)
    names = set(source.co_names) if source else set()
    missing = [name for name in (_DECODER_QUEUE, _DECODER_THREAD, _JITTER_BUFFER, _TIMESTAMP_MAPPER, _RTCP_SSRC)
               if name not in names]
    missing += [name for name in ("_send_rtcp_pli", "_send_rtcp", "_send_rtcp_nack", "_handle_rtcp_packet")
                if not hasattr(receiver_class, name)]
    if missing:
        raise RuntimeError(
            f"aiortc {_aiortc_version()} lacks the receiver internals the media plane taps "
            f"({', '.join(missing)}); install the pinned aiortc from requirements.txt"
        )


def _aiortc_version() -> str:
    import aiortc

    return str(getattr(aiortc, "__version__", "unknown"))


def watch_sender_reports(receiver: RTCRtpReceiver, callback: Callable[[RtcpSrPacket], None]) -> None:
    """Call ``callback`` with every RTCP sender report the receiver gets.

    Records keep them: a sender report pairs an RTP timestamp with the
    sender's wall clock, which aligns audio and video to a few milliseconds.
    """
    handle = receiver._handle_rtcp_packet

    async def handle_with_reports(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            try:
                callback(packet)
            except Exception:
                logger.exception("a sender report watcher failed")
        await handle(packet)

    receiver._handle_rtcp_packet = handle_with_reports  # type: ignore[method-assign]


def rtp_timestamp_origin(receiver: RTCRtpReceiver) -> int | None:
    """The RTP timestamp of the first frame the receiver handed on.

    aiortc rebases every frame's timestamp to its first one before the
    decoder queue (our tap) sees it; sender reports speak in the sender's
    own timestamps, so aligning by them needs this origin back.
    """
    mapper = getattr(receiver, _TIMESTAMP_MAPPER, None)
    origin = getattr(mapper, "_origin", None)
    return None if origin is None else int(origin) % (1 << 32)


class PacketByPacket:
    """A jitter buffer that hands on every audio packet as it arrives.

    aiortc's audio jitter buffer holds four packets (80 ms) before releasing
    one; a forwarder has no decoder to protect, and the player's own jitter
    buffer reorders. Each RTP packet of Opus or G.711 is a whole frame.

    It is also the one place that sees each audio packet with its header
    extensions, so it hands their RFC 6464 level to ``audio_level``.
    """

    capacity = 16

    def __init__(self, audio_level: AudioLevel | None = None) -> None:
        self.audio_level = audio_level

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        level = packet.extensions.audio_level
        if level is not None and self.audio_level is not None:
            self.audio_level.packet(level[1])
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]

    def remove(self, count: int) -> None:
        return None


class EncodedFrameTap:
    def __init__(self) -> None:
        self._sinks: list[FrameSink] = []
        self._stopped = threading.Event()
        # Payload bytes handed on (a plain int on the event loop: the node's
        # meter reads it once per heartbeat, rooms.media.metering).
        self.bytes_in = 0
        # Frames handed on, read likewise by the node's live rates (rooms.media.traffic_rates).
        self.frames_in = 0

    @classmethod
    def install(
        cls, receiver: RTCRtpReceiver, *, packet_by_packet: bool = False, audio_level: AudioLevel | None = None
    ) -> EncodedFrameTap:
        if getattr(receiver, _DECODER_THREAD) is not None:
            raise RuntimeError("the receiver's decoder already started; install the tap earlier")
        tap = cls()
        setattr(receiver, _DECODER_QUEUE, tap)
        if packet_by_packet:
            setattr(receiver, _JITTER_BUFFER, PacketByPacket(audio_level))
        return tap

    def add_sink(self, sink: FrameSink) -> None:
        self._sinks.append(sink)

    def remove_sink(self, sink: FrameSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    # --- the queue interface aiortc uses -------------------------------------

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:
            self._stopped.set()
            return
        codec, frame = item
        self.bytes_in += len(frame.data)
        self.frames_in += 1
        for sink in tuple(self._sinks):
            try:
                sink(codec, frame)
            except Exception:
                # An exception here would end the receiver's RTP handling for
                # every subscriber of this stream.
                logger.exception("a frame sink failed")

    def get(self, *args: Any, **kwargs: Any) -> None:
        self._stopped.wait()
        return None
