"""A whole server under ``manage.py loadtest``: the numbers of docs/PERFORMANCE.md.

Starts one daphne (its embedded media node) as ``make run`` does
(``--config embedded``: SQLite, in-memory live state) or as one process of
a deployment (``--config redis``: Redis at 127.0.0.1:6379 under a fresh key
prefix, PostgreSQL database ``test`` at 127.0.0.1:5432), all media on
127.0.0.1, runs ``manage.py loadtest`` against it with the arguments given
after ``--`` and prints the load test's numbers with the server's CPU (all
its threads, over the load test's whole run), its peak RSS, and the load
generator's own CPU: it runs on the same machine and takes its share of
the cores (it encodes every publisher's video).
Exit status: the load test's.

Run from the project root::

    .venv/bin/python tests/bench/loadtest_server.py -- \
        --rooms 4 --publishers 1 --subscribers 5 --chat-rate 2 --duration 30
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make tests importable
    sys.path.insert(0, str(ROOT))

from tests.bench.report import log  # noqa: E402
from tests.bench.sfu_driver import cpu_seconds, rss_mb  # noqa: E402
from tests.processes import daphne, manage, redis_keys_delete  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"


def server_env(config: str, var_dir: Path) -> dict[str, str]:
    env = {**os.environ, "VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING",
           "ALLOWED_HOSTS": "127.0.0.1,localhost", "MEDIA_HOST_IP": "127.0.0.1", "ROOM_AUTH": "open"}
    if config == "redis":
        env.update(REDIS_URL=REDIS_URL, DATABASE_URL=POSTGRES_URL, LIVE_STATE_PREFIX=f"bench-{uuid.uuid4().hex[:8]}")
    else:
        env.update(REDIS_URL="", DATABASE_URL=f"sqlite:///{var_dir / 'db.sqlite3'}")
    return env


class Sampler(threading.Thread):
    """The server's RSS once a second, its peak kept."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss_mb = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            self.peak_rss_mb = max(self.peak_rss_mb, rss_mb(self.pid))


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (the load test, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(config: str, loadtest_args: Sequence[str]) -> tuple[int, dict[str, Any] | None, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-loadtest-") as directory:
        var_dir = Path(directory)
        env = server_env(config, var_dir)
        manage(env, "migrate", "--noinput")
        server = daphne("web", env, var_dir).start()
        try:
            assert server.process is not None
            pid = server.process.pid
            sampler = Sampler(pid)
            sampler.start()
            cpu_before, started = cpu_seconds(pid), time.monotonic()
            generator_before = _children_cpu_s()
            result = subprocess.run(
                [sys.executable, "manage.py", "loadtest", server.http_url, *loadtest_args, "--json"],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
            )
            wall = time.monotonic() - started
            cpu = cpu_seconds(pid) - cpu_before
            generator = _children_cpu_s() - generator_before
            sampler.stopped.set()
            server_numbers = {"cpu_percent": round(100 * cpu / wall, 1), "wall_s": round(wall, 1),
                              "peak_rss_mb": round(max(sampler.peak_rss_mb, rss_mb(pid)), 1),
                              "generator_cpu_percent": round(100 * generator / wall, 1)}
        finally:
            server.stop()
            if config == "redis":
                redis_keys_delete(REDIS_URL, env["LIVE_STATE_PREFIX"])
    report = json.loads(result.stdout) if result.stdout.strip() else None
    return result.returncode, report, server_numbers


def _ms(summary: dict[str, float] | None, key: str) -> str:
    return "-" if summary is None else f"{summary[key]:g}"


def markdown(report: dict[str, Any], server: dict[str, float], command: str) -> str:
    media, chat, fps = report["media"], report["chat"], report["media"]["fps"]
    rows = [
        ("participants joined", f"{report['participants']['joined']}/{report['participants']['planned']}"),
        ("join (room.join → room.state), p50 / p95", f"{_ms(report['join_ms'], 'p50')} / "
                                                    f"{_ms(report['join_ms'], 'p95')} ms"),
        ("first frame (stream.play → first video frame), p50 / p95",
         f"{_ms(media['first_frame_ms'], 'p50')} / {_ms(media['first_frame_ms'], 'p95')} ms"),
        ("fps per subscription, min / p50 (published)",
         "-" if fps is None else f"{fps['min']:g} / {fps['p50']:g} ({report['config']['fps']})"),
        ("video frames lost", f"{media['video_frames_lost']} of {media['video_frames'] + media['video_frames_lost']}"
                              f" ({media['video_loss_percent']:g}%)"),
        ("RTP packets lost", f"{media['rtp_packets_lost']} ({media['rtp_loss_percent']:g}%)"),
    ]
    if chat is not None:
        rows += [
            ("chat latency, p50 / p99", f"{_ms(chat['latency_ms'], 'p50')} / {_ms(chat['latency_ms'], 'p99')} ms"),
            ("chat deliveries lost", f"{chat['lost']} of {chat['expected_deliveries']} ({chat['loss_percent']:g}%)"),
        ]
    rows += [
        ("server errors", str(report["errors"]["count"])),
        ("server CPU (one daphne, all threads)", f"{server['cpu_percent']:g}% of one core over {server['wall_s']:g} s"),
        ("server peak RSS", f"{server['peak_rss_mb']:g} MiB"),
        ("load generator CPU (manage.py loadtest)", f"{server['generator_cpu_percent']:g}% of one core"),
    ]
    lines = [f"`{command}`", "", "| measure | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "PASSED" if report["passed"] else "FAILED: " + "; ".join(report["failures"])]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=("embedded", "redis"), default="embedded")
    parser.add_argument("--json-out", type=Path, help="write the load test's whole JSON report here")
    given = list(sys.argv[1:] if argv is None else argv)
    ours, loadtest_args = (given[: given.index("--")], given[given.index("--") + 1 :]) if "--" in given else (given, [])
    options = parser.parse_args(ours)
    log(f"loadtest against one daphne ({options.config}): {' '.join(loadtest_args)}")
    status, report, server = run(options.config, loadtest_args)
    if report is None:
        log("the load test produced no report")
        return status or 2
    if options.json_out:
        options.json_out.write_text(json.dumps({"server": server, "report": report}, indent=2))
    command = " ".join([".venv/bin/python", "tests/bench/loadtest_server.py", *given])
    print(markdown(report, server, command))
    return status


if __name__ == "__main__":
    sys.exit(main())
