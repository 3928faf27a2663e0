"""Chat deliveries counted into the process's metrics per event loop pass, not one by one.

A message to a room of N reaches N WebSockets, mostly in one pass of the
event loop. Counting each into prometheus_client's multiprocess files (a
pid check, a lock and an mmap write per counter and histogram bucket) was
a sixth of a delivery's CPU. Here the deliveries of a pass are added to
``conference_chat_deliveries_total`` together, and the delivery latency is
observed once per message in each process: its first member's hand-over
(the others of the process follow within the same pass).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ops import metrics

# Where a channel message notes that its latency was observed (a group's
# message is one dict for all its members in the process, rooms.channel_layers).
OBSERVED_KEY = "delivery_observed"


class ChatDeliveryTally:
    """One event loop's chat deliveries not yet added to the metrics."""

    def __init__(self) -> None:
        self._pending = 0

    def delivered(self, message: dict[str, Any]) -> None:
        """Count one hand-over of the ``room.event`` channel message ``message`` (a ``room.message``)."""
        if self._pending == 0:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending += 1
        if OBSERVED_KEY not in message:
            message[OBSERVED_KEY] = True
            # The message's ts is the accepting process's clock: across hosts
            # this includes their clock difference.
            sent_ms = message["event"]["message"]["ts"]
            metrics.CHAT_DELIVERY_SECONDS.observe(max(0.0, time.time() - sent_ms / 1000))

    def _flush(self) -> None:
        pending, self._pending = self._pending, 0
        metrics.CHAT_DELIVERIES.inc(pending)
