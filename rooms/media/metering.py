"""A media node's traffic and holdings, added to ``ops.metrics`` once per heartbeat.

The forwarding path counts nothing for Prometheus: aiortc already counts
RTP packets (each receiver's streams, each sender), the tap adds up the
payload bytes it hands on, each ``ForwardLeg`` its dropped frames, and
``rooms.media.nacks`` the NACKs on the RTCP side, all plain integers on the
event loop. Legs still waiting to forward and recorder queue depths are
sampled here too. The meter reads them and adds what grew since its last
reading to the shared counters: a few locked increments per heartbeat for
the whole node, whatever the packet rate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ops import metrics
from rooms.media.counter_readings import RECEIVER_STREAMS, SENDER_OCTETS, SENDER_PACKETS, CounterReadings
from rooms.media.nacks import NackCount
from rooms.media.peer import PlayedStream, PublishedStream
from rooms.media.sink import QueueingSink, StreamSink


class TrafficMeter:
    def __init__(self) -> None:
        # Per counted object (a tap, a receiver, a sender, a track): its
        # figures at the last reading.
        self._readings = CounterReadings()
        self._stream_labels: set[tuple[str, str]] = set()
        self._leg_kinds: set[str] = set()

    def _grown(self, owner: object, *now: int) -> tuple[int, ...]:
        """What grew since the last reading; all of it at the first (counted from zero)."""
        grown = self._readings.grown(owner, *now)
        return now if grown is None else grown

    def published_read(self, stream: PublishedStream) -> None:
        packets = octets = 0
        for tap in stream.taps.values():
            octets += self._grown(tap, tap.bytes_in)[0]
        for transceiver in stream.pc.getTransceivers():
            remote_streams = getattr(transceiver.receiver, RECEIVER_STREAMS, {})
            received = sum(int(getattr(s, "packets_received", 0)) for s in remote_streams.values())
            packets += self._grown(transceiver.receiver, received)[0]
        if packets:
            metrics.RTP_PACKETS.labels("in").inc(packets)
        if octets:
            metrics.RTP_BYTES.labels("in").inc(octets)
        self._nacks_read(stream.nacks_sent, "sent")

    def played_read(self, played: PlayedStream) -> None:
        packets = octets = 0
        for transceiver in played.pc.getTransceivers():
            sender = transceiver.sender
            sent = int(getattr(sender, SENDER_PACKETS, 0)), int(getattr(sender, SENDER_OCTETS, 0))
            grown = self._grown(sender, *sent)
            packets += grown[0]
            octets += grown[1]
        if packets:
            metrics.RTP_PACKETS.labels("out").inc(packets)
        if octets:
            metrics.RTP_BYTES.labels("out").inc(octets)
        for kind, track in played.tracks.items():
            dropped = self._grown(track, track.frames_dropped)[0]
            if dropped:
                metrics.FORWARD_DROPS.labels(kind).inc(dropped)
        self._nacks_read(played.nacks_received, "received")

    def _nacks_read(self, count: NackCount, direction: str) -> None:
        messages, packets = self._grown(count, count.messages, count.packets)
        if messages:
            metrics.NACKS.labels(direction).inc(messages)
        if packets:
            metrics.NACKED_PACKETS.labels(direction).inc(packets)

    def read(
        self, published: Iterable[PublishedStream], played: Iterable[PlayedStream], sinks: Iterable[StreamSink] = ()
    ) -> None:
        """Count the traffic since the last reading, and set what the node holds and queues now."""
        streams: Counter[tuple[str, str]] = Counter()
        for stream in published:
            self.published_read(stream)
            streams.update(stream.codecs.items())
        legs: Counter[str] = Counter()
        waiting: Counter[str] = Counter()
        for leg in played:
            self.played_read(leg)
            legs.update(leg.tracks.keys())
            for kind, track in leg.tracks.items():
                waiting[kind] += track.waiting()
        metrics.RECORDER_QUEUE_FRAMES.set(
            sum(sink.queued_frames() for sink in sinks if isinstance(sink, QueueingSink))
        )
        # Labels seen before and gone now read 0 rather than their last value.
        self._stream_labels |= set(streams)
        for kind, codec in self._stream_labels:
            metrics.STREAMS.labels(kind, codec).set(streams[(kind, codec)])
        self._leg_kinds |= set(legs)
        for kind in self._leg_kinds:
            metrics.SUBSCRIBER_LEGS.labels(kind).set(legs[kind])
            metrics.FORWARD_WAITING_LEGS.labels(kind).set(waiting[kind])
