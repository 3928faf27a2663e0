"""A media node's live rates: each published stream's bitrate, frame rate
and loss, and the node's load, for the operator's live view.

``rooms.media.metering`` adds the node's traffic to Prometheus counters;
this module turns the same plain counters (each tap's bytes and frames,
each receiver's RTP statistics, each sender's octets) into rates over the
last window of at least ``WINDOW_MS``, once per heartbeat. The heartbeat
writes the result to the live state (``rooms.live.node_traffic``), where
any web process reads it. A window shorter than a second would make a
30 fps stream read 28 or 32 from one heartbeat to the next, so a heartbeat
that comes sooner repeats the last window's rates with fresh counts.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rooms.media.counter_readings import RECEIVER_STREAMS, SENDER_OCTETS, CounterReadings
from rooms.media.peer import PlayedStream, PublishedStream

WINDOW_MS = 1000
# A node's record stays small however many streams it serves: the live
# view shows the busiest ones (every stream still counts in the totals).
MAX_STREAMS = 500


@dataclass(frozen=True)
class TrackRates:
    """One track of a published stream, as the node received it in the window."""

    bps: int
    fps: float
    # Share of the media packets the publisher sent that never arrived
    # (before any retransmission), 0..1.
    loss: float


@dataclass(frozen=True)
class StreamTraffic:
    players: int
    tracks: dict[str, TrackRates] = field(default_factory=dict)

    @property
    def bps(self) -> int:
        return sum(track.bps for track in self.tracks.values())


@dataclass(frozen=True)
class NodeTraffic:
    node: str
    at_ms: int
    window_ms: int
    published: int
    # Subscriber legs: one per player of a stream.
    legs: int
    bps_in: int
    bps_out: int
    streams: dict[str, StreamTraffic] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> NodeTraffic:
        data: dict[str, Any] = json.loads(raw)
        streams = {
            stream_id: StreamTraffic(
                players=int(stream["players"]),
                tracks={kind: TrackRates(**rates) for kind, rates in stream["tracks"].items()},
            )
            for stream_id, stream in data.pop("streams").items()
        }
        return cls(**data, streams=streams)


class TrafficRates:
    """Reads a node's counters once per heartbeat and keeps the last window's rates."""

    def __init__(self, window_ms: int = WINDOW_MS) -> None:
        self.window_ms = window_ms
        # Per counted object: its figures at the start of the current window.
        self._readings = CounterReadings()
        self._window_start_ms: int | None = None
        self._rates: NodeTraffic | None = None

    def read(
        self, node: str, published: Iterable[PublishedStream], played: Iterable[PlayedStream], now_ms: int
    ) -> NodeTraffic:
        published = list(published)
        played = list(played)
        start = self._window_start_ms
        if self._rates is not None and start is not None and now_ms - start < self.window_ms:
            return dataclasses.replace(
                self._rates, node=node, at_ms=now_ms, published=len(published), legs=len(played)
            )
        elapsed_s = (now_ms - start) / 1000 if start is not None else 0.0
        self._window_start_ms = now_ms

        players: Counter[str] = Counter(leg.published.stream_id for leg in played)
        streams = {
            stream.stream_id: StreamTraffic(players=players[stream.stream_id], tracks=self._tracks(stream, elapsed_s))
            for stream in published
        }
        bps_out = sum(self._sent_bps(leg, elapsed_s) for leg in played)
        busiest = sorted(streams.items(), key=lambda item: item[1].bps, reverse=True)[:MAX_STREAMS]
        self._rates = NodeTraffic(
            node=node, at_ms=now_ms, window_ms=round(elapsed_s * 1000), published=len(published), legs=len(played),
            bps_in=sum(stream.bps for stream in streams.values()), bps_out=bps_out, streams=dict(busiest),
        )
        return self._rates

    def _tracks(self, stream: PublishedStream, elapsed_s: float) -> dict[str, TrackRates]:
        tracks = {}
        for transceiver in stream.pc.getTransceivers():
            kind = transceiver.kind
            tap = stream.taps.get(kind)
            if tap is None:
                continue
            grown = self._readings.grown(tap, tap.bytes_in, tap.frames_in)
            receiver = transceiver.receiver
            packets = self._readings.grown(receiver, *_packets(receiver, stream.ssrcs.get(kind)))
            if grown is None or elapsed_s <= 0:
                tracks[kind] = TrackRates(bps=0, fps=0.0, loss=0.0)
                continue
            loss = 0.0
            if packets is not None and packets[0] > 0:
                expected, received = packets
                loss = round(max(0, expected - received) / expected, 4)
            tracks[kind] = TrackRates(
                bps=round(grown[0] * 8 / elapsed_s), fps=round(grown[1] / elapsed_s, 1), loss=loss
            )
        return tracks

    def _sent_bps(self, leg: PlayedStream, elapsed_s: float) -> int:
        octets = 0
        for transceiver in leg.pc.getTransceivers():
            sender = transceiver.sender
            grown = self._readings.grown(sender, int(getattr(sender, SENDER_OCTETS, 0)))
            if grown is not None:
                octets += grown[0]
        return round(octets * 8 / elapsed_s) if elapsed_s > 0 else 0


def _packets(receiver: object, ssrc: int | None) -> tuple[int, int]:
    """Packets expected and received on the publisher's media SSRC (not its
    retransmissions, which would hide the loss they repair)."""
    statistics = getattr(receiver, RECEIVER_STREAMS, {})
    chosen = [statistics[ssrc]] if ssrc in statistics else list(statistics.values())[:1]
    expected = sum(int(s.packets_expected) for s in chosen)
    received = sum(int(s.packets_received) for s in chosen)
    return expected, received
