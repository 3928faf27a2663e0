"""The live view's state.json: how long one read takes with N open rooms.

What it measures
----------------
A real daphne on Redis (127.0.0.1:6379, a fresh key prefix) and PostgreSQL
(a fresh database on 127.0.0.1:5432), as in the integration tests. Two
participants (WebSocket sessions) join each of N rooms; then a logged-in
operator reads ``/admin/live/state.json`` ``--reads`` times in a row (after
3 unmeasured reads) and the wall time of each request is taken, from the
request sent to the last byte of the answer. Rooms carry no media here:
a stream adds one registry read per room (done anyway) and a few hundred
bytes of JSON; the per-room reads are what grows with N. The Celery queue
is read from Redis in every request. Table: p50 / p90 / max (nearest-rank)
and the answer's size per N. Target: p50 ≤ 250 ms with 200 rooms (the page
asks every 2.5 s).

Run from the project root::

    .venv/bin/python tests/bench/live_state.py
    .venv/bin/python tests/bench/live_state.py --rooms 0 10 50 200 --reads 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conference_site.settings")
os.environ["MEDIA_HOST_IP"] = "127.0.0.1"

from tests.bench.report import Target, exit_status, fmt, log, percentile, targets_markdown  # noqa: E402
from tests.integration.test_live_view import CREATE_OPERATOR, PASSWORD, Operator  # noqa: E402
from tests.processes import daphne, manage, redis_keys_delete  # noqa: E402
from tests.wsclient import SocketClient  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"
TARGET_ROOMS = 200
TARGET_P50_S = 0.25


async def _read_times(operator: Operator, reads: int) -> tuple[list[float], int]:
    for _ in range(3):
        await asyncio.to_thread(operator.get, "/admin/live/state.json")
    times, size = [], 0
    for _ in range(reads):
        started = time.perf_counter()
        status, body = await asyncio.to_thread(operator.get, "/admin/live/state.json")
        times.append(time.perf_counter() - started)
        assert status == 200, body[:200]
        size = len(body)
    return times, size


Result = tuple[int, list[float], int]  # rooms, read times (s), answer bytes


async def run(room_counts: list[int], reads: int, env: dict[str, str], log_dir: Path) -> list[Result]:
    server = daphne("web", env, log_dir).start()
    clients: list[SocketClient] = []
    try:
        await asyncio.to_thread(manage, env, "shell", "-c", CREATE_OPERATOR.format(name="bench", password=PASSWORD))
        operator = Operator(server.http_url)
        await asyncio.to_thread(operator.log_in, "bench")
        clients = [await SocketClient.connected(server.ws_url, login) for login in ("alice", "bob")]
        joined = 0
        results = []
        for count in sorted(room_counts):
            for number in range(joined, count):
                for client in clients:
                    reply = await client.request("room.join", room=f"bench-{number:04d}")
                    assert reply["type"] == "room.state", reply
            joined = max(joined, count)
            times, size = await _read_times(operator, reads)
            log(f"{count} rooms: p50 {percentile(times, 50) * 1000:.1f} ms, {size} bytes")
            results.append((count, times, size))
        return results
    finally:
        for client in clients:
            await client.close()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, nargs="+", default=[0, 10, 50, 200])
    parser.add_argument("--reads", type=int, default=30)
    arguments = parser.parse_args()

    import psycopg

    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    database = f"conference_bench_{os.getpid()}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {database}")
    try:
        with tempfile.TemporaryDirectory() as folder:
            env = {
                **os.environ, "DATABASE_URL": POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}",
                "REDIS_URL": REDIS_URL, "LIVE_STATE_PREFIX": prefix, "VAR_DIR": str(Path(folder) / "var"),
                "PROMETHEUS_MULTIPROC_DIR": str(Path(folder) / "var" / "prometheus"),
                "ROOM_AUTH": "open", "JOINS_BURST": "100000", "JOINS_PER_IP_PER_SECOND": "0",
                "ROOMS_PER_CONNECTION": "1000",
                "ALLOWED_HOSTS": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1",
            }
            manage(env, "migrate", "--noinput")
            results = asyncio.run(run(arguments.rooms, arguments.reads, env, Path(folder)))
    finally:
        redis_keys_delete(REDIS_URL, prefix)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

    print(f"# state.json with N open rooms ({arguments.reads} reads each)\n")
    print("| rooms | p50 ms | p90 ms | max ms | answer bytes |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for count, times, size in results:
        print(f"| {count} | {fmt(percentile(times, 50) * 1000, 1)} | {fmt(percentile(times, 90) * 1000, 1)} "
              f"| {fmt(max(times) * 1000, 1)} | {size} |")
    at_target = [times for count, times, _ in results if count == TARGET_ROOMS]
    p50 = percentile(at_target[0], 50) if at_target else None
    target = Target(f"state.json p50 with {TARGET_ROOMS} rooms ≤ {TARGET_P50_S * 1000:.0f} ms",
                    "-" if p50 is None else f"{p50 * 1000:.1f} ms", None if p50 is None else p50 <= TARGET_P50_S)
    print()
    print("\n".join(targets_markdown([target])))
    return exit_status(run_failed=False, results=[target])


if __name__ == "__main__":
    sys.exit(main())
