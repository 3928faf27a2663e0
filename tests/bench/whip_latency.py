"""WHIP publish latency, against a WebSocket publish in the same run.

What it measures
----------------
A real daphne (the embedded configuration ``make run`` starts: SQLite,
in-memory state, media node in daphne) with ``WHIP_TOKEN`` set. Bob is in
the room over the WebSocket and plays every stream published there. Then,
``--runs`` times (after ``--warmup`` unmeasured runs), two publishers take
turns, each an aiortc peer sending a 640x480 counter video and a tone:

- **WHIP**: one ``POST /whip/<room>`` (the session, the join and the
  publish in one request), then ``DELETE``;
- **WebSocket** (the baseline): open the socket, ``session.connect``,
  ``room.join``, ``stream.publish``, then close.

Each is timed from its first byte: its answer (``201`` / ``stream.answer``),
bob's ``room.published``, and the first frame of bob's play of it (bob's
play starts at ``room.published``). Milliseconds, p50 / p90 / max
(nearest-rank percentiles).

Run from the project root::

    .venv/bin/python tests/bench/whip_latency.py --runs 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make tests importable
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conference_site.settings")

from aiortc import RTCSessionDescription  # noqa: E402

from rooms.media.peer import use_host_address  # noqa: E402
from tests.bench.report import log, percentile  # noqa: E402
from tests.media_clients import Player, play, publisher_offer  # noqa: E402
from tests.processes import ServerProcess, daphne, manage  # noqa: E402
from tests.whip_client import whip_publish  # noqa: E402
from tests.wsclient import SocketClient  # noqa: E402

WHIP_TOKEN = "bench-whip-token"
STEPS = ("answer", "published", "first frame")


async def _watch(bob: SocketClient, started: float, marks: dict[str, float]) -> Player:
    """Bob sees the stream published, plays it, and sees its first frame."""
    stream = (await bob.event("room.published", timeout=15))["stream"]["id"]
    marks["published"] = (time.monotonic() - started) * 1000
    player = await play(bob, stream)
    await player.wait_for(lambda: player.first_frame_at is not None, 15)
    assert player.first_frame_at is not None
    marks["first frame"] = (player.first_frame_at - started) * 1000
    return player


async def whip_once(server: ServerProcess, bob: SocketClient, room: str) -> dict[str, float]:
    marks: dict[str, float] = {}
    started = time.monotonic()
    watching = asyncio.ensure_future(_watch(bob, started, marks))
    session = await whip_publish(f"{server.http_url}whip/{room}", WHIP_TOKEN)
    marks["answer"] = (time.monotonic() - started) * 1000
    player = await watching
    assert await session.delete() == 200
    await bob.event("room.left", timeout=10)
    await session.close()
    await player.pc.close()
    return marks


async def websocket_once(server: ServerProcess, bob: SocketClient, room: str) -> dict[str, float]:
    marks: dict[str, float] = {}
    started = time.monotonic()
    watching = asyncio.ensure_future(_watch(bob, started, marks))
    alice = await SocketClient.connected(server.ws_url, "alice")
    await alice.request("room.join", room=room)
    publisher, sdp = await publisher_offer()
    answer = await alice.request("stream.publish", room=room, kind="camera", sdp=sdp, timeout=15)
    marks["answer"] = (time.monotonic() - started) * 1000
    await publisher.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    player = await watching
    await alice.request("room.leave", room=room)
    await bob.event("room.left", timeout=10)
    await alice.close()
    await publisher.pc.close()
    await player.pc.close()
    return marks


async def measure(server: ServerProcess, runs: int, warmup: int) -> dict[str, list[dict[str, float]]]:
    room = f"bench-whip-{uuid.uuid4().hex[:8]}"
    bob = await SocketClient.connected(server.ws_url, "bob")
    await bob.request("room.join", room=room)
    results: dict[str, list[dict[str, float]]] = {"WHIP": [], "WebSocket": []}
    for run in range(warmup + runs):
        for name, once in (("WHIP", whip_once), ("WebSocket", websocket_once)):
            marks = await once(server, bob, room)
            if run >= warmup:
                results[name].append(marks)
        log(f"run {run + 1}/{warmup + runs}")
    await bob.close()
    return results


def report(results: dict[str, list[dict[str, float]]], command: str) -> str:
    runs = len(results["WHIP"])
    lines = [f"publish → bob's first frame, loopback, {runs} runs each, interleaved", "",
             "| step (from the first byte) | WHIP p50 / p90 / max ms | WebSocket p50 / p90 / max ms |",
             "|---|---|---|"]  # fmt: skip
    for step in STEPS:
        cells = []
        for name in ("WHIP", "WebSocket"):
            values = [marks[step] for marks in results[name]]
            cells.append(f"{percentile(values, 50):.0f} / {percentile(values, 90):.0f} / {max(values):.0f}")
        lines.append(f"| {step} | {cells[0]} | {cells[1]} |")
    return "\n".join([*lines, "", f"command: {command}"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args(argv)
    command = " ".join([".venv/bin/python", "tests/bench/whip_latency.py", *(argv or sys.argv[1:])])
    use_host_address("127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="whip-latency-") as folder:
        var_dir = Path(folder)
        env = {**os.environ, "VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING",
               "ALLOWED_HOSTS": "127.0.0.1,localhost", "MEDIA_HOST_IP": "127.0.0.1", "ROOM_AUTH": "open",
               "REDIS_URL": "", "DATABASE_URL": f"sqlite:///{var_dir / 'db.sqlite3'}", "WHIP_TOKEN": WHIP_TOKEN,
               "JOINS_BURST": "1000"}  # fmt: skip
        manage(env, "migrate", "--noinput")
        server = daphne("web", env, var_dir).start()
        try:
            results = asyncio.run(measure(server, args.runs, args.warmup))
        except Exception as error:
            print(f"the run failed: {error!r}\n{server.log()[-4000:]}", file=sys.stderr)
            return 2
        finally:
            server.stop()
    print(report(results, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
