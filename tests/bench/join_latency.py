"""Join latency: click on Join → first frame of another participant shown.

What it measures
----------------
A real daphne serves the conference page; two real Chromiums (Debian's,
fake cameras from y4m files, all media on 127.0.0.1) play alice and bob.
Bob joins once and stays, publishing his camera. Then, ``--runs`` times
(after ``--warmup`` unmeasured runs), alice's page is loaded afresh with her
login filled in, and inside the page the time is taken at the click on
``#join`` and at each step until the first frame of bob's camera is shown
in alice's tile (``requestVideoFrameCallback``, its ``expectedDisplayTime``).
Alice then leaves and the next run starts. Page loading is not measured;
everything from the click is: the WebSocket, ``session.connect``,
``room.join``, the play offer with Chromium's ICE gathering, the server's
answer, ICE and DTLS, the keyframe request to bob, decoding and display.

Steps reported, each from the click: ``established`` (``#status``
ESTABLISHED), ``tile`` (bob's video element exists), the play's peer
connection made, its ICE gathering complete (offers are complete, no
trickle), the server's answer applied, ICE and DTLS connected (from a thin
``RTCPeerConnection`` subclass installed before the page's scripts),
``playing`` (the tile's status PLAYING: the server sent the first packet)
and ``first frame``. Alice's own publish runs beside them and is not waited
for. Table: p50 / p90 / max over the measured runs (nearest-rank
percentiles). Target: first frame p50 ≤ 1.0 s. Exit status 1 if the target
is missed, 2 if the run failed.

Configurations: ``embedded`` (default; what ``make run`` starts: SQLite,
in-memory channel layer and live state, media node in daphne), ``redis``
(Redis at 127.0.0.1:6379 under a fresh key prefix, PostgreSQL database
``test`` at 127.0.0.1:5432, as in the integration tests) or ``relay`` (as
root: the networks of tests/e2e/test_nat_relay.py; both Chromiums at home
behind a router that drops all UDP to the server, ``manage.py serve`` and
coturn from deploy/coturn/turnserver.conf on the server's namespace,
``TURN_URLS`` with a UDP and a TCP URL, so every peer connection runs
through the relay over TCP; Chromium with the everyday flags, the page
from the server's address. Target there: first frame p50 ≤ 0.8 s).

Run from the project root::

    .venv/bin/python tests/bench/join_latency.py
    .venv/bin/python tests/bench/join_latency.py --config redis --runs 20 --json
    .venv/bin/python tests/bench/join_latency.py --config relay
"""

from __future__ import annotations

import argparse
import json
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

from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright  # noqa: E402

from tests import netns  # noqa: E402
from tests.bench.report import percentile  # noqa: E402
from tests.coturn import coturn  # noqa: E402
from tests.e2e.cameras import make_camera  # noqa: E402
from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS, EVERYDAY_CHROMIUM_ARGS  # noqa: E402
from tests.processes import ServerProcess, daphne, manage, redis_keys_delete  # noqa: E402

TARGET_P50_S = 1.0
TARGETS_P50_S = {"embedded": TARGET_P50_S, "redis": TARGET_P50_S, "relay": 0.8}
TURN_SECRET = "a-turn-secret-shared-with-coturn-of-40-chars"
FIRST_FRAME_TIMEOUT_MS = 10_000
REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"
STEPS = (
    "established", "tile", "play created", "play gathered", "play answered", "play connected", "playing", "firstFrame",
)
STEP_LABELS = {
    "play created": "play: peer connection made",
    "play gathered": "play: offer's ICE gathering done",
    "play answered": "play: server's answer in",
    "play connected": "play: ICE + DTLS connected",
    "firstFrame": "first frame",
}

# Installed in alice's page before its scripts: timestamps of each peer
# connection's steps, to split the time between the tile and PLAYING.
PEER_TIMELINE_JS = """(() => {
  const Native = window.RTCPeerConnection;
  window.peerTimeline = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      const entry = {created: performance.now()};
      this.timeline = entry;
      window.peerTimeline.push(entry);
      this.addEventListener('icegatheringstatechange', () => {
        if (this.iceGatheringState === 'complete') entry.gathered = performance.now();
      });
      this.addEventListener('connectionstatechange', () => {
        if (this.connectionState === 'connected') entry.connected = performance.now();
      });
    }
    createOffer(...args) {
      this.timeline.plays = this.getTransceivers().every((t) => t.direction === 'recvonly');
      return super.createOffer(...args);
    }
    setRemoteDescription(description) {
      this.timeline.answered = performance.now();
      return super.setRemoteDescription(description);
    }
  };
})()"""

# Runs in alice's page: click Join, then timestamp each step from the DOM
# (a MutationObserver sees every badge and tile change) until the first
# frame of the remote camera is shown. Resolves with milliseconds from the click.
JOIN_AND_TIME_JS = """async ({remote, timeoutMs}) => {
  const selector = `[data-participant="${remote}"] video[data-stream-kind="camera"]`;
  const status = document.getElementById('status');
  const marks = {};
  let start = 0;
  let watched = null;
  return await new Promise((resolve, reject) => {
    const mark = (name) => { if (marks[name] === undefined) marks[name] = performance.now() - start; };
    const observer = new MutationObserver(() => {
      if (status.dataset.status === 'ESTABLISHED') mark('established');
      const video = document.querySelector(selector);
      if (!video) return;
      mark('tile');
      if (video.parentElement.querySelector('.stream-status')?.dataset.status === 'PLAYING') mark('playing');
      if (video === watched) return;
      watched = video;
      video.requestVideoFrameCallback((now, frame) => {
        marks.firstFrame = frame.expectedDisplayTime - start;
        const play = window.peerTimeline.find((entry) => entry.plays && entry.created >= start);
        for (const step of ['created', 'gathered', 'answered', 'connected']) {
          if (play?.[step] !== undefined) marks[`play ${step}`] = play[step] - start;
        }
        clearTimeout(timer);
        observer.disconnect();
        resolve(marks);
      });
    });
    const timer = setTimeout(() => {
      observer.disconnect();
      reject(new Error(`no frame of ${remote} within ${timeoutMs} ms: ${JSON.stringify(marks)}`));
    }, timeoutMs);
    observer.observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
    start = performance.now();
    document.getElementById('join').click();
  });
}"""


def server_env(config: str, var_dir: Path) -> dict[str, str]:
    env = {**os.environ, "VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
    env["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    env["MEDIA_HOST_IP"] = "127.0.0.1"  # benchmark media stays on loopback
    env.setdefault("ROOM_AUTH", "open")  # as `make run` serves
    if config == "redis":
        prefix = f"bench-join-{uuid.uuid4().hex[:8]}"
        env.update(REDIS_URL=REDIS_URL, DATABASE_URL=POSTGRES_URL, LIVE_STATE_PREFIX=prefix)
    else:
        env.update(REDIS_URL="", DATABASE_URL=f"sqlite:///{var_dir / 'db.sqlite3'}")
    return env


def launch(playwright: Playwright, name: str, cameras: Path, *, at: tuple[netns.Host, str] | None = None) -> Browser:
    """``name``'s Chromium; ``at`` (a host, the page's origin): everyday flags, in that host's namespace."""
    camera = make_camera(name, cameras)
    if at is None:
        args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera.path}"]
        return playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    host, origin = at
    args = [*EVERYDAY_CHROMIUM_ARGS, f"--unsafely-treat-insecure-origin-as-secure={origin}",
            f"--use-file-for-fake-video-capture={camera.path}"]
    return playwright.chromium.launch(executable_path=str(host.wrapper(CHROMIUM, cameras)), args=args)


def room_page(browser: Browser) -> Page:
    context = browser.new_context(permissions=["camera", "microphone"])
    context.set_default_timeout(FIRST_FRAME_TIMEOUT_MS)
    context.add_init_script(PEER_TIMELINE_JS)
    return context.new_page()


def join_once(page: Page, url: str) -> dict[str, float]:
    page.goto(url)
    page.fill("#login", "alice")
    marks: dict[str, float] = page.evaluate(JOIN_AND_TIME_JS, {"remote": "bob", "timeoutMs": FIRST_FRAME_TIMEOUT_MS})
    expect(page.locator("#local-status")).to_have_text("PUBLISHING")
    page.click("#join")  # Leave
    expect(page.locator("#join")).to_have_text("Join")
    return marks


def runs_measured(
    base_url: str, runs: int, warmup: int, folder: Path, at: tuple[netns.Host, str] | None = None
) -> list[dict[str, float]]:
    with sync_playwright() as playwright:
        bob_page = room_page(launch(playwright, "bob", folder, at=at))
        alice_page = room_page(launch(playwright, "alice", folder, at=at))
        url = f"{base_url}conference/?roomName=bench-join-{uuid.uuid4().hex[:8]}"
        bob_page.goto(url)
        bob_page.fill("#login", "bob")
        bob_page.click("#join")
        expect(bob_page.locator("#local-status")).to_have_text("PUBLISHING")
        results = [join_once(alice_page, url) for _ in range(warmup + runs)]
        return results[warmup:]


def measure_relay(runs: int, warmup: int) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="join-latency-relay-") as name, \
            netns.behind_nat(udp_to_server=False) as path:
        folder = Path(name)
        relay = coturn(path.server, folder, secret=TURN_SECRET, allowed_peer=path.server.address)
        turn = f"turn:{path.server.address}:3478"
        server = None
        try:
            server = netns.serve(path.server, folder, ALLOWED_HOSTS=path.server_public, LOG_LEVEL="WARNING",
                                 TURN_URLS=f"{turn}?transport=udp,{turn}?transport=tcp",
                                 TURN_SHARED_SECRET=TURN_SECRET)
            origin = f"http://{path.server_public}:{netns.SERVE_PORT}"
            return runs_measured(f"{origin}/", runs, warmup, folder, at=(path.client, origin))
        finally:
            if server is not None:
                server.stop()
            relay.stop()


def measure(config: str, runs: int, warmup: int) -> list[dict[str, float]]:
    if config == "relay":
        return measure_relay(runs, warmup)
    with tempfile.TemporaryDirectory(prefix="join-latency-") as folder:
        var_dir = Path(folder)
        env = server_env(config, var_dir)
        manage(env, "migrate", "--noinput")
        server: ServerProcess = daphne("web", env, var_dir).start()
        try:
            return runs_measured(server.http_url, runs, warmup, var_dir)
        except Exception:
            print(server.log()[-4000:], file=sys.stderr)
            raise
        finally:
            server.stop()
            if config == "redis":
                redis_keys_delete(REDIS_URL, env["LIVE_STATE_PREFIX"])


def report(results: list[dict[str, float]], command: str, config: str) -> str:
    where = "through a TURN relay over TCP" if config == "relay" else "loopback"
    lines = [f"join click → first remote frame, {where}, {len(results)} runs", "",
             "| step (from the click) | p50 ms | p90 ms | max ms |", "|---|---|---|---|"]  # fmt: skip
    for step in STEPS:
        values = [r[step] for r in results if step in r]
        if values:
            p50, p90 = percentile(values, 50), percentile(values, 90)
            lines.append(f"| {STEP_LABELS.get(step, step)} | {p50:.0f} | {p90:.0f} | {max(values):.0f} |")
    p50 = percentile([r["firstFrame"] for r in results], 50) / 1000
    target = TARGETS_P50_S[config]
    verdict = "met" if p50 <= target else "MISSED"
    lines += ["", f"first frame p50 {p50:.2f} s, target ≤ {target:.1f} s: {verdict}", "", f"command: {command}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--config", choices=("embedded", "redis", "relay"), default="embedded")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON after the table")
    args = parser.parse_args(argv)
    given = list(argv) if argv is not None else sys.argv[1:]
    command = " ".join([".venv/bin/python", "tests/bench/join_latency.py", *given])
    started = time.monotonic()
    try:
        results = measure(args.config, args.runs, args.warmup)
    except Exception as error:
        print(f"the run failed: {error}", file=sys.stderr)
        return 2
    print(report(results, command, args.config))
    print(f"(config {args.config}; wall time {time.monotonic() - started:.0f} s)")
    if args.json:
        print(json.dumps([{step: round(ms, 1) for step, ms in run.items()} for run in results]))
    return 0 if percentile([r["firstFrame"] for r in results], 50) / 1000 <= TARGETS_P50_S[args.config] else 1


if __name__ == "__main__":
    sys.exit(main())
