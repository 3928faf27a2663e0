"""What plugs into a media node: sinks fed by a published stream.

A sink (a recorder, say) reads the same encoded frames the players get,
plus the sender's RTCP reports, through ``PublishedMedia``; it is offered
each stream the node accepts by ``rooms.media.signals.stream_started`` and
closed by the node when that stream ends or the node shuts down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

from aiortc.rtp import RtcpSrPacket

from rooms.media.tap import FrameSink

SenderReportWatcher = Callable[[RtcpSrPacket], None]
# (status, info, detail): a record that did not start ("FAILED") or stopped
# ("STOPPED") for want of disk ("disk_quota", "disk_full"); call on the loop.
RecordStatusReporter = Callable[
    [Literal["FAILED", "STOPPED"], Literal["disk_quota", "disk_full"], str], None
]


class PublishedMedia(Protocol):
    """A published stream as a sink sees it. Kinds are "audio" and "video"."""

    @property
    def stream_id(self) -> str: ...

    @property
    def codecs(self) -> dict[str, str]:
        """Kind -> the codec name the publisher sends (e.g. "VP8", "opus")."""
        ...

    def frames_watch(self, kind: str, sink: FrameSink) -> None:
        """Call ``sink`` on the event loop with each encoded frame of ``kind``.

        A sink must return at once and must not raise for long: it runs on
        the forwarding path of every player.
        """

    def sender_reports_watch(self, kind: str, watcher: SenderReportWatcher) -> None:
        """Call ``watcher`` with each RTCP sender report of ``kind``."""

    def ssrc(self, kind: str) -> int | None:
        """The publisher's media SSRC of ``kind`` (as its offer announced it)."""

    def rtp_timestamp_origin(self, kind: str) -> int | None:
        """The sender's RTP timestamp of the first frame of ``kind``.

        Frames reach sinks with timestamps rebased to 0 at that frame;
        sender reports speak in the sender's own timestamps.
        """


class StreamSink(Protocol):
    async def close(self) -> None:
        """The stream ended (or its node is shutting down): finish up."""


@runtime_checkable
class QueueingSink(StreamSink, Protocol):
    """A sink that hands frames to a queue of its own (a recorder's writer thread)."""

    def queued_frames(self) -> int:
        """Frames taken and not yet written; read once per node heartbeat."""
        ...
