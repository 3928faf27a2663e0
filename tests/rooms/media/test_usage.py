"""The CPU share a node reports in its heartbeat."""

from __future__ import annotations

import time

from rooms.media.usage import CpuUsage


def test_the_share_follows_the_work_done_between_readings() -> None:
    usage = CpuUsage()
    end = time.monotonic() + 0.3
    spins = 0
    while time.monotonic() < end:  # busy: the measurement window
        spins += 1
    busy = usage.share()
    time.sleep(0.3)  # idle: the measurement window
    idle = usage.share()
    # Other processes share the machine's two cores: busy is "most of one".
    assert busy > 0.4, (busy, spins)
    assert idle < 0.1, idle
    assert busy > 4 * idle
