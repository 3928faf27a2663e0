"""Chromium on a link that falls to 300 kbit/s: the conference page keeps the
last picture of the paused video with a note, and plays again after.

A server with one link to each of two machines (tests/netns.py ``star``):
on the first an aiortc publisher (tests/congestion_peer.py) sends a
counter over faint grain; on the second Chromium opens the conference page
and joins. Chromium's receiver sends REMB (the server's answer offers
``goog-remb`` and not ``transport-cc``). Then that machine's link is
throttled (``tc tbf``): the page gets ``stream.paused``, and the tile shows
the picture it had, still, with the note; the link restored, the note goes
and frames advance again. The page is served from the server's address
over http, which only the flag makes a secure context (a person would have
https://).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, expect

from tests import netns
from tests.congestion_scenario import Peer
from tests.e2e.cameras import FakeCamera
from tests.e2e.chromium import CHROMIUM, EVERYDAY_CHROMIUM_ARGS
from tests.e2e.room_page import RoomPage

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not netns.available(), reason="needs root to build network namespaces")]

ROOM = "slow-link"
PAUSED = re.compile(r"\bpaused\b")
# The middle of the still picture: grain around mid-grey, not a blank canvas.
STILL_PIXEL_JS = """(canvas) => {
  const [r, g, b] = canvas.getContext('2d').getImageData(canvas.width / 2, canvas.height / 2, 1, 1).data;
  return {width: canvas.width, height: canvas.height, luma: (r + g + b) / 3};
}"""


def test_a_page_on_a_slow_link_shows_the_last_picture_with_a_note_then_plays_again(
    playwright: Playwright, fake_cameras: Callable[[str], FakeCamera], tmp_path: Path, artifacts: Path,
) -> None:
    with netns.star(2) as star:
        # The page's origin, and the aiortc publisher's (tests/wsclient.py).
        server = netns.serve(star.server, tmp_path, ALLOWED_HOSTS=f"{star.server_addresses[1]},127.0.0.1")
        publisher: Peer | None = None
        browser: Browser | None = None
        try:
            publisher = Peer(star.clients[0], "publish", "--url",
                             f"ws://{star.server_addresses[0]}:{netns.SERVE_PORT}/ws/rooms/",
                             "--room", ROOM, "--viewers", "0")
            publisher.expect(lambda line: line["event"] == "published", 30)
            origin = f"http://{star.server_addresses[1]}:{netns.SERVE_PORT}"
            args = [*EVERYDAY_CHROMIUM_ARGS, f"--unsafely-treat-insecure-origin-as-secure={origin}",
                    f"--use-file-for-fake-video-capture={fake_cameras('carol').path}"]
            browser = playwright.chromium.launch(
                executable_path=str(star.clients[1].wrapper(CHROMIUM, tmp_path)), args=args)
            context = browser.new_context(permissions=["camera", "microphone"])
            context.set_default_timeout(20_000)
            page = RoomPage(context.new_page(), "carol").open(origin, "/conference/", ROOM)
            page.enter()
            video = page.remote_video("pub")
            page.wait_frames(video, 15)
            slot = page.page.locator('[data-participant="pub"] .stream[data-slot="camera"]')
            expect(slot).not_to_have_class(PAUSED)

            star.shape(1, "300kbit")
            expect(slot).to_have_class(PAUSED, timeout=10_000)
            note = slot.locator(".paused-note")
            expect(note).to_be_visible()
            expect(note).to_contain_text("Video paused")
            still = slot.locator("canvas.still")
            expect(still).to_be_visible()
            pixel = still.evaluate(STILL_PIXEL_JS)
            assert pixel["width"] == 640 and pixel["height"] == 480, pixel
            assert 90 <= pixel["luma"] <= 170, pixel
            page.screenshot(artifacts, "paused-for-bandwidth")

            star.unshape(1)
            expect(slot).not_to_have_class(PAUSED, timeout=15_000)
            expect(note).to_be_hidden()
            page.wait_frames(video, 30)
        finally:
            if browser is not None:
                browser.close()
            if publisher is not None:
                publisher.stop()
            server.stop()
