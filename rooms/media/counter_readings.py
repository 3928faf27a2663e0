"""What grew of aiortc's and the tap's plain counters since their last reading.

The node's Prometheus meter (``rooms.media.metering``) and its live rates
(``rooms.media.traffic_rates``) both read the same counters once per
heartbeat, each keeping its own last readings.
"""

from __future__ import annotations

import weakref

# aiortc's own counters, where it keeps them (read with getattr and a
# default, so a renamed one reads as nothing sent rather than failing).
SENDER_PACKETS = "_RTCRtpSender__packet_count"
SENDER_OCTETS = "_RTCRtpSender__octet_count"
RECEIVER_STREAMS = "_RTCRtpReceiver__remote_streams"


class CounterReadings:
    """Each counted object's figures at its last reading; forgotten with the object."""

    def __init__(self) -> None:
        self._last: weakref.WeakKeyDictionary[object, tuple[int, ...]] = weakref.WeakKeyDictionary()

    def grown(self, owner: object, *now: int) -> tuple[int, ...] | None:
        """What grew since ``owner``'s last reading; None when it is read for the first time."""
        before = self._last.get(owner)
        self._last[owner] = now
        if before is None:
            return None
        return tuple(max(0, current - previous) for current, previous in zip(now, before, strict=True))
