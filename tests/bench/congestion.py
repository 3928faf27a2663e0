"""Congestion feedback: one subscriber's link falls to 300 kbit/s and comes back.

What it measures
----------------
The network and clients of tests/integration/test_congestion.py
(tests/congestion_scenario.py): a server in a namespace with one link to
each of two client machines; on the first an aiortc publisher (a counter
over faint grain, so its encoder spends what it is allowed) and two
players, on the second one more player ("poor"). Each round publishes into
a fresh room, throttles the poor player's link (``tc tbf``, 300 kbit/s),
holds it 5 s after the pause, restores it and watches 4 s more.

Two configurations, each served by its own ``manage.py serve`` in the
server's namespace, rounds interleaved (on, off, on, off, ...) so both see
the same machine load:

- ``on``: ``ROOM_MIN_VIDEO_KBPS=300`` (the default): the poor player's
  video is paused and resumed;
- ``off``: ``ROOM_MIN_VIDEO_KBPS=0``: no congestion control, what the node
  did before: the publisher is capped by ``ROOM_MAX_VIDEO_KBPS`` only and
  the poor player gets the whole stream through its slow link.

Reported per configuration: time from the throttle to ``stream.paused``,
from the restore to ``stream.resumed`` (p50 / max), the other players'
lowest frame rate over the round, the poor player's frames while its link
was slow, its audio frames per second then, and the lowest bitrate the
publisher was asked for. Targets (issue 15): paused within 5 s, resumed
within 10 s, the others ≥ 25 fps, the publisher never asked for less than
the floor. Exit status 1 if a target is missed, 2 if a run failed. Needs
root (network namespaces) and tc.

Run from the project root::

    .venv/bin/python tests/bench/congestion.py
    .venv/bin/python tests/bench/congestion.py --rounds 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make tests importable
    sys.path.insert(0, str(ROOT))

import timeit  # noqa: E402

from rooms.media.congestion import CongestionPolicy, TrackCongestion  # noqa: E402
from tests import netns  # noqa: E402
from tests.bench.report import Target, exit_status, fmt, log, percentile, targets_markdown  # noqa: E402
from tests.congestion_scenario import Round, run_round  # noqa: E402

FLOOR_KBPS = 300
CONFIGS = {"on": str(FLOOR_KBPS), "off": "0"}
PORTS = {"on": 8000, "off": 8001}


def slow_figures(result: Round) -> tuple[float, float]:
    """The poor player's video frames and audio frames per second while its link was slow (after the pause)."""
    seconds = result.at_restore["at"] - result.at_pause["at"]
    frames = result.at_restore["frames"] - result.at_pause["frames"]
    audio = result.at_restore["audio_frames"] - result.at_pause["audio_frames"]
    return frames / seconds, audio / seconds


def decision_costs(legs: int = 100) -> tuple[float, float]:
    """Seconds per REMB handled, and per tick of a track with ``legs`` subscribers (in process, best of 5)."""
    congestion = TrackCongestion(CongestionPolicy(min_bps=FLOOR_KBPS * 1000, max_bps=2_500_000))
    congestion.source_bps = 800_000
    for leg in range(legs):
        congestion.leg_add(leg)
    figures = iter(range(10**9))

    def remb() -> None:
        congestion.estimate(next(figures) % legs, 900_000, 1.0)

    def tick() -> None:
        congestion.tick(1.0)
        congestion.target_bps(1.0)

    per_remb = min(timeit.repeat(remb, number=100_000, repeat=5)) / 100_000
    per_tick = min(timeit.repeat(tick, number=1_000, repeat=5)) / 1_000
    return per_remb, per_tick


def describe(config: str, number: int, result: Round) -> str:
    fps = [viewer["fps"] for viewer in result.report["viewers"].values()]
    video, audio = slow_figures(result)
    told = result.report["remb_told"]
    return (f"{config} round {number}: paused {fmt(result.pause_s, 2)} s, resumed {fmt(result.resume_s, 2)} s, "
            f"others {fps} fps, poor while slow {video:.1f} video / {audio:.1f} audio frames/s, "
            f"publisher told ≥ {min(told) // 1000 if told else '-'} kbit/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", default="300kbit")
    args = parser.parse_args(argv)
    if not netns.available():
        log("needs root and iproute2 (network namespaces)")
        return 2
    results: dict[str, list[Round]] = {config: [] for config in CONFIGS}
    try:
        with tempfile.TemporaryDirectory(prefix="congestion-bench-") as folder, netns.star(2) as star:
            servers = []
            try:
                for config, floor in CONFIGS.items():
                    servers.append(netns.serve(star.server, Path(folder), f"serve-{config}", port=PORTS[config],
                                               ROOM_MIN_VIDEO_KBPS=floor))
                for number in range(args.rounds):
                    for config in CONFIGS:
                        result = run_round(star, port=PORTS[config], room=f"bench-{config}-{number}", rate=args.rate,
                                           pause_wait_s=8.0 if config == "on" else 3.0)
                        log(describe(config, number, result))
                        results[config].append(result)
            finally:
                for server in servers:
                    server.stop()
    except Exception as error:  # reported, exit status 2
        log(f"failed: {error!r}")
        return 2

    lines = ["# Congestion feedback: one subscriber's link at " + args.rate, "",
             f"{args.rounds} rounds per configuration, interleaved; p50 / max where two figures.", "",
             "| | on (ROOM_MIN_VIDEO_KBPS=300) | off (0) |", "| --- | --- | --- |"]

    def cell(config: str, values: list[float | None], digits: int = 2) -> str:
        known = [value for value in values if value is not None]
        if not known:
            return "never"
        missing = f" ({len(values) - len(known)} never)" if len(known) < len(values) else ""
        return f"{fmt(percentile(known, 50), digits)} / {fmt(max(known), digits)}{missing}"

    rows: dict[str, Callable[[str], str]] = {
        "throttle → stream.paused (s)": lambda c: cell(c, [r.pause_s for r in results[c]]),
        "restore → stream.resumed (s)": lambda c: cell(c, [r.resume_s for r in results[c]]),
        "other players, lowest fps": lambda c: fmt(min(
            v["fps"] for r in results[c] for v in r.report["viewers"].values()), 1),
        "poor player while slow, video frames/s": lambda c: cell(c, [slow_figures(r)[0] for r in results[c]], 1),
        "poor player while slow, audio frames/s": lambda c: cell(c, [slow_figures(r)[1] for r in results[c]], 1),
        "publisher asked for, lowest (kbit/s)": lambda c: str(min(
            (min(r.report["remb_told"]) // 1000 for r in results[c] if r.report["remb_told"]), default=0)),
    }
    for label, row in rows.items():
        lines.append(f"| {label} | {row('on')} | {row('off')} |")
    per_remb, per_tick = decision_costs()
    lines += ["", f"Decisions, in process: {per_remb * 1e9:.0f} ns per REMB handled, "
              f"{per_tick * 1e6:.1f} µs per tick (4 a second) of a track with 100 subscribers.", ""]

    on = results["on"]
    pauses = [r.pause_s for r in on]
    resumes = [r.resume_s for r in on]
    others = min(v["fps"] for r in on for v in r.report["viewers"].values())
    told = min(min(r.report["remb_told"]) for r in on if r.report["remb_told"])
    targets = [
        Target("paused within 5 s", cell("on", list(pauses)),
               all(p is not None and p <= 5.0 for p in pauses)),
        Target("resumed within 10 s", cell("on", list(resumes)),
               all(p is not None and p <= 10.0 for p in resumes)),
        Target("the other players ≥ 25 fps", f"{others} fps", others >= 25.0),
        Target("the publisher never asked for less than the floor", f"{told // 1000} kbit/s",
               told >= FLOOR_KBPS * 1000),
    ]
    lines += targets_markdown(targets)
    print("\n".join(lines))
    return exit_status(run_failed=False, results=targets)


if __name__ == "__main__":
    sys.exit(main())
