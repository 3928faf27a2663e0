"""How a recorder is fed from a published stream: its taps and its sender reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiortc.sdp import SessionDescription

from recording.capture import RecordTarget, StreamRecorder
from rooms.media.peer import PublishedStream, first_ssrc
from rooms.media.tap import FrameSink, rtp_timestamp_origin, watch_sender_reports


def recorder_attach(
    published: PublishedStream,
    target: RecordTarget,
    *,
    offer_sdp: str,
    wrap_sink: Callable[[FrameSink], FrameSink] = lambda sink: sink,
) -> StreamRecorder:
    """A recorder fed by the stream's taps and its sender reports.

    ``wrap_sink`` lets a benchmark time the recorder's work on the event loop.
    """
    offer = SessionDescription.parse(offer_sdp)
    receivers = {transceiver.kind: transceiver.receiver for transceiver in published.pc.getTransceivers()}
    recorder = StreamRecorder(
        target,
        codecs=published.codecs,
        ssrcs={kind: first_ssrc(offer, kind) for kind in published.codecs},
        rtp_origins=lambda kind: rtp_timestamp_origin(receivers[kind]) if kind in receivers else None,
    )
    for kind, tap in published.taps.items():
        tap.add_sink(wrap_sink(recorder.sink(kind)))
    for kind, receiver in receivers.items():

        def report(packet: Any, kind: str = kind) -> None:
            recorder.on_sender_report(kind, packet)

        watch_sender_reports(receiver, report)
    return recorder
