"""The multiprocess directory forgets the live gauges of dead processes, and only those."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops.multiprocess import dead_processes_forget


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_dead_processes_lose_their_live_gauges_and_keep_their_counters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    dead, alive = _dead_pid(), os.getpid()
    for pid in (dead, alive):
        for name in (f"gauge_livesum_{pid}.db", f"counter_{pid}.db", f"histogram_{pid}.db"):
            (tmp_path / name).write_bytes(b"")

    assert dead_processes_forget() == [dead]

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([
        f"counter_{dead}.db", f"histogram_{dead}.db",
        f"counter_{alive}.db", f"gauge_livesum_{alive}.db", f"histogram_{alive}.db",
    ])
    assert dead_processes_forget() == []  # nothing left to forget of it but its counters
