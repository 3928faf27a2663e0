"""The share of a CPU core this process used between two readings.

A node reports it in every heartbeat, next to what it serves, so that web
processes place new rooms by what a node really costs: legs alone miss
recording, a heavy bitrate, or the web side sharing an embedded node's
process.
"""

from __future__ import annotations

import time


class CpuUsage:
    """CPU seconds per second of this process (user + system, all threads),
    over the time since the previous ``share()``."""

    def __init__(self) -> None:
        self._cpu = time.process_time()
        self._at = time.monotonic()

    def share(self) -> float:
        """0.5: half of one core; more than 1 when several threads ran at once."""
        cpu, at = time.process_time(), time.monotonic()
        elapsed = at - self._at
        used = cpu - self._cpu
        self._cpu, self._at = cpu, at
        if elapsed <= 0:
            return 0.0
        return round(max(0.0, used / elapsed), 3)
