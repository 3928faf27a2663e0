"""The CPU share a node reports in its heartbeat."""

from __future__ import annotations

import time

from rooms.media.usage import CpuUsage


def test_the_share_follows_the_work_done_between_readings() -> None:
    usage = CpuUsage()
    cpu_before, wall_before = time.process_time(), time.monotonic()
    end = wall_before + 0.3
    spins = 0
    while time.monotonic() < end:  # busy: the measurement window
        spins += 1
    busy = usage.share()
    # What the process really got of a core (other processes share the
    # machine's cores, so "all of one" cannot be assumed).
    got = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
    time.sleep(0.3)  # idle: the measurement window
    idle = usage.share()
    assert abs(busy - got) < 0.05, (busy, got, spins)
    assert busy > 0.1, (busy, spins)
    assert idle < 0.1, idle
    assert busy > 2 * idle
