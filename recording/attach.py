"""How a recorder is fed from a published stream: its frames and its sender reports."""

from __future__ import annotations

from collections.abc import Callable

from aiortc.rtp import RtcpSrPacket

from recording.capture import RecordTarget, StreamRecorder
from recording.disk_space import DiskRefusal
from rooms.media.sink import PublishedMedia
from rooms.media.tap import FrameSink


def recorder_attach(
    published: PublishedMedia,
    target: RecordTarget,
    *,
    wrap_sink: Callable[[FrameSink], FrameSink] = lambda sink: sink,
    on_stopped: Callable[[DiskRefusal], None] = lambda refusal: None,
) -> StreamRecorder:
    """A recorder fed by the stream's frames and its sender reports.

    ``wrap_sink`` lets a benchmark time the recorder's work on the event loop.
    """
    recorder = StreamRecorder(
        target,
        codecs=published.codecs,
        ssrcs={kind: published.ssrc(kind) for kind in published.codecs},
        rtp_origins=published.rtp_timestamp_origin,
        on_stopped=on_stopped,
    )
    for kind in published.codecs:
        published.frames_watch(kind, wrap_sink(recorder.sink(kind)))

        def report(packet: RtcpSrPacket, kind: str = kind) -> None:
            recorder.on_sender_report(kind, packet)

        published.sender_reports_watch(kind, report)
    return recorder
