"""prometheus-client's multiprocess mode: the directory and its exposition.

Each process writes its values to files named after its pid. When a
process dies, its live gauges must go (``mark_process_dead``), while its
counters stay so that sums never go down; prometheus-client leaves the
"which pids are dead" to the application, so every process, when it
starts, forgets the gauges of pids no longer running.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.registry import Collector

# The files mark_process_dead removes: a process's live gauges.
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


def directory() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def dead_processes_forget() -> list[int]:
    """Remove the live gauges of processes no longer running; returns their pids."""
    path = directory()
    if path is None or not path.is_dir():
        return []
    pids = {int(match.group(1)) for name in os.listdir(path) if (match := _LIVE_GAUGE_FILE.match(name))}
    dead = sorted(pid for pid in pids if pid != os.getpid() and not _running(pid))
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
    return dead


def exposition(*collectors: Collector) -> bytes:
    """Every process's metrics summed, plus ``collectors`` read now (text format)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)
