"""One subscriber's link falls to a slow rate and comes back: what each side saw.

Used by tests/integration/test_congestion.py and tests/bench/congestion.py,
on a ``netns.star(2)`` with a server serving in its middle: on the first
client machine an aiortc publisher publishes a counter video over faint
grain (so its encoder spends what it is allowed) and two sessions of its
own play it; on the second machine one more session ("poor") plays it.
Then the second machine's link is throttled (``tc tbf``), held, and
restored. The clients are tests/congestion_peer.py processes, whose JSON
lines carry ``time.monotonic()`` stamps (one clock for every process of
the machine).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from tests import netns

Line = dict[str, Any]


class Peer:
    """A tests/congestion_peer.py process in a namespace, its JSON lines read as they come."""

    def __init__(self, host: netns.Host, *args: str) -> None:
        self.process = subprocess.Popen(
            host.command(sys.executable, "-m", "tests.congestion_peer", *args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[Line] = queue.Queue()
        self.seen: list[Line] = []
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            if line.startswith("{"):
                self.lines.put(json.loads(line))

    def expect(self, predicate: Any, timeout: float) -> Line:
        """The first line (seen before or coming within ``timeout``) that ``predicate`` accepts."""
        for line in self.seen:
            if predicate(line):
                return line
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if predicate(line):
                return line
        stderr = ""
        if self.process.poll() is not None and self.process.stderr is not None:
            stderr = self.process.stderr.read()
        raise AssertionError(f"no such line within {timeout} s; seen {self.seen}; {stderr[-3000:]}")

    def drain(self) -> None:
        """Take in the lines that came so far."""
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return

    def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def status(self, session: str) -> Line:
        """What ``session`` played so far (frames, audio frames, its last frame's time), and when."""
        asked = time.monotonic()
        self.command("status")
        line = self.expect(lambda line: line["event"] == "status" and line["at"] >= asked, 10)
        return {**line["viewers"][session], "at": line["at"]}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def frame_of(type_: str, session: str) -> Any:
    return lambda line: (line["event"] == "frame" and line["session"] == session
                         and line["frame"]["type"] == type_)


@dataclass
class Round:
    stream: str
    # Seconds from the throttle to stream.paused, and from the restore to
    # stream.resumed; None: it did not come within the wait.
    pause_s: float | None = None
    resume_s: float | None = None
    paused: Line | None = None
    resumed: Line | None = None
    # The poor session's frame and audio counts when paused, and when the link was restored.
    at_pause: Line = field(default_factory=dict)
    at_restore: Line = field(default_factory=dict)
    # Resumed while the link was still slow, or paused again after the restore.
    resumed_while_slow: bool = False
    paused_after_restore: bool = False
    # At the end: the publisher's report (its viewers' fps since the throttle,
    # the REMB it was told) and the poor session's.
    report: Line = field(default_factory=dict)
    poor_report: Line = field(default_factory=dict)


def run_round(star: netns.Star, *, port: int = netns.SERVE_PORT, room: str = "links", rate: str = "300kbit",
              slow_s: float = 5.0, after_s: float = 4.0, pause_wait_s: float = 8.0,
              resume_wait_s: float = 12.0) -> Round:
    """Publish, throttle the poor session's link to ``rate``, hold it ``slow_s`` after the
    pause (or the pause wait), restore it, watch ``after_s`` after the resume."""
    urls = [f"ws://{address}:{port}/ws/rooms/" for address in star.server_addresses]
    peers: list[Peer] = []
    try:
        publisher = Peer(star.clients[0], "publish", "--url", urls[0], "--room", room, "--viewers", "2")
        peers.append(publisher)
        stream = publisher.expect(lambda line: line["event"] == "published", 30)["stream"]
        poor = Peer(star.clients[1], "play", "--url", urls[1], "--room", room, "--login", "poor",
                    "--stream", stream)
        peers.append(poor)
        for peer in (publisher, poor):
            peer.expect(lambda line: line["event"] == "playing", 30)
        publisher.command("mark")
        publisher.expect(lambda line: line["event"] == "marked", 5)
        result = Round(stream)

        throttled = time.monotonic()
        star.shape(1, rate)
        try:
            result.paused = poor.expect(frame_of("stream.paused", "poor"), pause_wait_s)
            result.pause_s = result.paused["at"] - throttled
        except AssertionError:
            pass
        result.at_pause = poor.status("poor")
        time.sleep(slow_s)
        result.at_restore = poor.status("poor")
        result.resumed_while_slow = any(frame_of("stream.resumed", "poor")(line) for line in poor.seen)
        restored = time.monotonic()
        star.unshape(1)
        if result.paused is not None and not result.resumed_while_slow:
            try:
                result.resumed = poor.expect(frame_of("stream.resumed", "poor"), resume_wait_s)
                result.resume_s = result.resumed["at"] - restored
            except AssertionError:
                pass
        time.sleep(after_s)
        poor.drain()
        result.paused_after_restore = any(
            frame_of("stream.paused", "poor")(line) and line["at"] > restored for line in poor.seen
        )
        poor.command("stop")
        publisher.command("stop")
        result.poor_report = poor.expect(lambda line: line["event"] == "report", 10)
        result.report = publisher.expect(lambda line: line["event"] == "report", 10)
        return result
    finally:
        for peer in peers:
            peer.stop()
