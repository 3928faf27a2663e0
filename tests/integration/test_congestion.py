"""Congestion feedback on a network the test builds (tests/netns.py ``star``):
a server with one link to each of two client machines.

On the first machine an aiortc publisher publishes a counter video, and two
sessions play it back; on the second one more session plays it. Then the
second machine's link is throttled to 300 kbit/s (a token bucket, ``tc
tbf``): that subscriber's REMB estimate falls, its video is paused within
5 s (``stream.paused`` reason ``bandwidth``; audio goes on) while the
others keep their frame rate and the publisher is never asked for less than
``ROOM_MIN_VIDEO_KBPS``. The link restored, the node's probes find it
carries video again, and the video resumes (``stream.resumed``, frames
advance) within 10 s.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests import netns

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not netns.available(), reason="needs root to build network namespaces")]

MIN_KBPS = 300
MIN_FPS = 25.0


class Peer:
    """A tests/congestion_peer.py process in a namespace, its JSON lines read as they come."""

    def __init__(self, host: netns.Host, *args: str) -> None:
        self.process = subprocess.Popen(
            host.command(sys.executable, "-m", "tests.congestion_peer", *args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            if line.startswith("{"):
                self.lines.put(json.loads(line))

    def expect(self, predicate: Any, timeout: float) -> dict[str, Any]:
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
        stderr = self.process.stderr.read() if self.process.poll() is not None and self.process.stderr else ""
        raise AssertionError(f"no such line within {timeout} s; seen {self.seen}; {stderr[-3000:]}")

    def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def frame_of(type_: str, session: str) -> Any:
    return lambda line: (line["event"] == "frame" and line["session"] == session
                         and line["frame"]["type"] == type_)


@contextlib.contextmanager
def peers() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    try:
        yield started
    finally:
        for peer in started:
            peer.stop()


def test_a_subscriber_on_a_300_kbit_link_is_paused_and_resumed_while_the_others_play_on(tmp_path: Path) -> None:
    with netns.star(2) as star, peers() as started:
        server = netns.serve(star.server, tmp_path, ROOM_MIN_VIDEO_KBPS=str(MIN_KBPS))
        try:
            urls = [f"ws://{address}:{netns.SERVE_PORT}/ws/rooms/" for address in star.server_addresses]
            publisher = Peer(star.clients[0], "publish", "--url", urls[0], "--viewers", "2")
            started.append(publisher)
            stream = publisher.expect(lambda line: line["event"] == "published", 30)["stream"]
            poor = Peer(star.clients[1], "play", "--url", urls[1], "--login", "poor", "--stream", stream)
            started.append(poor)
            for peer in (publisher, poor):
                peer.expect(lambda line: line["event"] == "playing", 30)
            publisher.command("mark")
            publisher.expect(lambda line: line["event"] == "marked", 5)

            throttled = time.monotonic()
            star.shape(1, "300kbit")
            paused = poor.expect(frame_of("stream.paused", "poor"), 8)
            assert paused["frame"] == {"type": "stream.paused", "stream": stream, "reason": "bandwidth"}
            pause_s = paused["at"] - throttled

            # Paused for a while: the probes must not bring it back on the slow link,
            # and the audio goes on.
            poor.command("status")
            before = poor.expect(lambda line: line["event"] == "status", 5)["viewers"]["poor"]
            time.sleep(5)
            poor.seen.clear()
            poor.command("status")
            during = poor.expect(lambda line: line["event"] == "status", 5)["viewers"]["poor"]
            assert not [line for line in poor.seen if frame_of("stream.resumed", "poor")(line)], poor.seen
            assert during["audio_frames"] - before["audio_frames"] >= 25 * 5, (before, during)
            restored = time.monotonic()
            star.unshape(1)
            resumed = poor.expect(frame_of("stream.resumed", "poor"), 12)
            assert resumed["frame"] == {"type": "stream.resumed", "stream": stream, "reason": "bandwidth"}
            resume_s = resumed["at"] - restored
            # It stays resumed: no second pause on the recovered link.
            time.sleep(4)
            assert not [line for line in poor.seen if frame_of("stream.paused", "poor")(line)], poor.seen

            poor.command("stop")
            publisher.command("stop")
            poor_report = poor.expect(lambda line: line["event"] == "report", 10)
            report = publisher.expect(lambda line: line["event"] == "report", 10)
        finally:
            server.stop()
        fps = [viewer["fps"] for viewer in report["viewers"].values()]
        print(f"paused {pause_s:.2f} s after the link fell to 300 kbit/s, resumed {resume_s:.2f} s after it "
              f"was restored; the other subscribers played {fps} fps; the publisher was told "
              f"{min(report['remb_told']) // 1000}-{max(report['remb_told']) // 1000} kbit/s")
        assert pause_s <= 5.0
        assert resume_s <= 10.0
        # The others kept the camera's pace through it all.
        assert min(fps) >= MIN_FPS, report
        # The publisher was never asked for less than the floor, and encodes at or above it.
        assert report["remb_told"] and min(report["remb_told"]) >= MIN_KBPS * 1000, report
        assert report["encoder_target_bps"] >= MIN_KBPS * 1000, report
        # Video comes again after the resume.
        (viewer,) = poor_report["viewers"].values()
        assert viewer["last_frame_at"] > resumed["at"] + 3, poor_report
