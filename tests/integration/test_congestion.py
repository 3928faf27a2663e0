"""Congestion feedback on a network the test builds (tests/netns.py ``star``):
a server with one link to each of two client machines.

On the first machine an aiortc publisher publishes a counter video, and two
sessions play it back; on the second one more session plays it
(tests/congestion_scenario.py). Then the second machine's link is
throttled to 300 kbit/s (a token bucket, ``tc tbf``): that subscriber's
REMB estimate falls, its video is paused within 5 s (``stream.paused``
reason ``bandwidth``) while its audio goes on, the others keep their frame
rate and the publisher is never asked for less than ``ROOM_MIN_VIDEO_KBPS``.
The probes do not bring the video back while the link stays slow. The link
restored, a probe finds it carries video again, and the video resumes
(``stream.resumed``, frames advance) within 10 s, and stays on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import netns
from tests.congestion_scenario import run_round

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not netns.available(), reason="needs root to build network namespaces")]

MIN_KBPS = 300
MIN_FPS = 25.0


def test_a_subscriber_on_a_300_kbit_link_is_paused_and_resumed_while_the_others_play_on(tmp_path: Path) -> None:
    with netns.star(2) as star:
        server = netns.serve(star.server, tmp_path, ROOM_MIN_VIDEO_KBPS=str(MIN_KBPS))
        try:
            result = run_round(star, rate="300kbit")
        finally:
            server.stop()
    report, poor = result.report, result.poor_report
    fps = [viewer["fps"] for viewer in report["viewers"].values()]
    told = report["remb_told"]
    print(f"paused {result.pause_s} s after the link fell to 300 kbit/s, resumed {result.resume_s} s after it "
          f"was restored; the other subscribers played {fps} fps; the publisher was told "
          f"{min(told) // 1000}-{max(told) // 1000} kbit/s")

    assert result.paused is not None and result.pause_s is not None, poor
    assert result.paused["frame"] == {"type": "stream.paused", "stream": result.stream, "reason": "bandwidth"}
    assert result.pause_s <= 5.0
    # Paused, the audio went on (50 frames a second; the probes' bursts cost some).
    slow_s = result.at_restore["at"] - result.at_pause["at"]
    assert result.at_restore["audio_frames"] - result.at_pause["audio_frames"] >= 25 * slow_s, result
    assert not result.resumed_while_slow

    assert result.resumed is not None and result.resume_s is not None, poor
    assert result.resumed["frame"] == {"type": "stream.resumed", "stream": result.stream, "reason": "bandwidth"}
    assert result.resume_s <= 10.0
    assert not result.paused_after_restore
    # Video comes again after the resume, up to the end.
    (viewer,) = poor["viewers"].values()
    assert viewer["last_frame_at"] > result.resumed["at"] + 3, poor

    # The others kept the camera's pace through it all.
    assert min(fps) >= MIN_FPS, report
    # The publisher was never asked for less than the floor, and encodes at or above it.
    assert told and min(told) >= MIN_KBPS * 1000, report
    assert report["encoder_target_bps"] >= MIN_KBPS * 1000, report
