"""Join latency through a TURN relay: connection opened → first frame played.

What it measures
----------------
The networks of tests/integration/test_nat_traversal.py: a client at home
behind a masquerading router, a server on the internet segment running
``manage.py serve`` (the embedded configuration) and coturn from
deploy/coturn/turnserver.conf. Two configurations:

- ``relay``: the home router drops all UDP to the server, so media goes
  through coturn over TCP (``TURN_URLS=turn:…?transport=tcp``, credentials
  minted per session);
- ``direct``: UDP passes and no TURN server is given: media goes straight
  from the client's host address (masqueraded) to the server's.

Each run is tests/netns_peer.py (aiortc) in the client's namespace: a
publisher joins a fresh room and publishes a 640x480 counter video with
audio; then a viewer, a session of its own, opens a WebSocket, connects,
joins, makes its play offer (ICE gathering, with its TURN allocations in
``relay``), gets the answer and waits for the first decoded frame. Times
are the viewer's, from opening its WebSocket. ``--runs`` measured runs
after ``--warmup``; p50 / p90 / max (nearest rank). Target: first frame
through the relay p50 ≤ 0.8 s. Exit status 1 if the target is missed, 2 if
a run failed. Needs root (network namespaces), nftables and coturn.

Run from the project root::

    .venv/bin/python tests/bench/relay_latency.py
    .venv/bin/python tests/bench/relay_latency.py --config relay --runs 20
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make tests importable
    sys.path.insert(0, str(ROOT))

from tests import netns  # noqa: E402
from tests.bench.report import Target, exit_status, fmt, log, percentile, targets_markdown  # noqa: E402
from tests.coturn import coturn  # noqa: E402

TARGET_P50_S = 0.8
WINDOW_S = 2.0  # seconds of playing over which the frame rate is measured
SECRET = "a-turn-secret-shared-with-coturn-of-40-chars"
STEPS = ("established", "joined", "gathered", "answered", "first_frame")
STEP_LABELS = {
    "established": "session `ESTABLISHED`",
    "joined": "`room.state`",
    "gathered": "play offer: ICE gathering done",
    "answered": "server's answer in",
    "first_frame": "**first frame decoded**",
}


def measure(config: str, runs: int, warmup: int, folder: Path) -> list[dict[str, Any]]:
    reports = []
    with netns.behind_nat(udp_to_server=config != "relay") as path:
        settings: dict[str, str] = {}
        relay = None
        if config == "relay":
            relay = coturn(path.server, folder, secret=SECRET, allowed_peer=path.server.address)
            settings.update(TURN_URLS=f"turn:{path.server.address}:3478?transport=tcp", TURN_SHARED_SECRET=SECRET)
        server = None
        try:
            server = netns.serve(path.server, folder, **settings)
            url = f"ws://{path.server_public}:{netns.SERVE_PORT}/ws/rooms/"
            for run in range(warmup + runs):
                command = path.client.command(
                    sys.executable, "-m", "tests.netns_peer", "--url", url,
                    "--room", f"bench-{run}", "--login", f"user{run}", "--window", str(WINDOW_S),
                )
                result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=90)
                if result.returncode != 0:
                    raise RuntimeError(f"run {run} failed:\n{result.stderr[-3000:]}")
                report = json.loads(result.stdout.strip().splitlines()[-1])
                kinds = {report[name]["pair"]["local"]["type"] for name in ("publish", "play")}
                log(f"{config} run {run}: first frame {report['connect_to_first_frame_s']:.3f} s, "
                    f"{report['fps']} fps (longest gap {report['longest_gap_s']} s), "
                    f"local candidates {sorted(kinds)}")
                if kinds != ({"relay"} if config == "relay" else {"host"}):
                    raise RuntimeError(f"{config} run {run} selected {kinds}")
                if run >= warmup:
                    reports.append(report)
        finally:
            if server is not None:
                server.stop()
            if relay is not None:
                relay.stop()
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=("relay", "direct", "both"), default="both")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args(argv)
    if not netns.available():
        log("needs root and iproute2 (network namespaces)")
        return 2
    configs = ("relay", "direct") if args.config == "both" else (args.config,)
    measured: dict[str, list[dict[str, Any]]] = {}
    try:
        for config in configs:
            with tempfile.TemporaryDirectory(prefix=f"relay-bench-{config}-") as folder:
                measured[config] = measure(config, args.runs, args.warmup, Path(folder))
    except Exception as error:  # reported, exit status 2
        log(f"failed: {error}")
        return 2

    lines = ["# Join latency through a TURN relay", "",
             f"{args.runs} runs per configuration; milliseconds from the viewer's WebSocket opening, "
             "p50 / p90 / max.", "",
             "| step | " + " | ".join(configs) + " |", "| --- |" + " --- |" * len(configs)]
    for step in STEPS:
        cells = []
        for config in configs:
            values = [report["steps_s"][step] * 1000 for report in measured[config]]
            cells.append(" / ".join(fmt(percentile(values, q), 0) for q in (50, 90, 100)))
        lines.append(f"| {STEP_LABELS[step]} | " + " | ".join(cells) + " |")
    fps = {config: min(report["fps"] for report in measured[config]) for config in configs}
    lines += ["", "Lowest frame rate played: " + ", ".join(f"{config} {fps[config]} fps" for config in configs), ""]
    results = []
    if "relay" in measured:
        p50 = percentile([report["steps_s"]["first_frame"] for report in measured["relay"]], 50)
        results.append(Target("first frame through the relay, p50 ≤ 0.8 s", f"{p50:.3f} s", p50 <= TARGET_P50_S))
    lines += targets_markdown(results)
    print("\n".join(lines))
    return exit_status(run_failed=False, results=results)


if __name__ == "__main__":
    sys.exit(main())
