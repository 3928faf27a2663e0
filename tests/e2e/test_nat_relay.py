"""Chromium on a network that lets no UDP out: the conference through coturn.

Two people at home behind a masquerading router that drops all UDP to the
server (tests/netns.py): the page gives their Chromiums the TURN URLs with
credentials of each session's own (``TURN_URLS``, ``TURN_SHARED_SECRET``),
and every peer connection, publish and play, runs through relay
candidates to coturn over TCP (run from deploy/coturn/turnserver.conf).
Chromium runs with the everyday flags; the page is served from the
server's address over http, which only this flag makes a secure context
(a person would have https://).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright

from tests import netns
from tests.coturn import coturn
from tests.e2e.cameras import FPS, FakeCamera
from tests.e2e.chromium import CHROMIUM, EVERYDAY_CHROMIUM_ARGS
from tests.e2e.room_page import RoomPage

pytestmark = pytest.mark.integration

SECRET = "a-turn-secret-shared-with-coturn-of-40-chars"
# As on a LAN (tests/e2e/test_lan.py): the relay adds about half a second.
# The TURN URL over UDP is blocked here: an offer waiting for the gatherer
# to give up on it would take the SDK's 5 s gathering timeout per publish and play.
SEE_EACH_OTHER_S = 6.0

# Per peer connection of the page: the selected pair's candidate types and addresses.
SELECTED_PAIRS_JS = """async () => {
  const state = window.conference;
  const named = [['camera', state.camera?.peerConnection],
    ...state.remoteStreams().map((s) => [`${s.participant().name()}/${s.kind()}`, s.peerConnection])];
  const result = {};
  for (const [name, pc] of named) {
    if (!pc) continue;
    const stats = new Map();
    (await pc.getStats()).forEach((report) => stats.set(report.id, report));
    const transport = [...stats.values()].find((r) => r.type === 'transport');
    const pair = stats.get(transport?.selectedCandidatePairId);
    const end = (id) => ({type: stats.get(id).candidateType, address: stats.get(id).address,
                          protocol: stats.get(id).relayProtocol ?? null});
    result[name] = pair ? {local: end(pair.localCandidateId), remote: end(pair.remoteCandidateId)} : null;
  }
  return result;
}"""

FRAMES_JS = "(video) => video.getVideoPlaybackQuality().totalVideoFrames"


@pytest.fixture
def path() -> Iterator[netns.NatPath]:
    with netns.behind_nat(udp_to_server=False) as built:
        yield built


def test_two_people_whose_network_drops_udp_see_each_other_through_coturn(
    path: netns.NatPath, playwright: Playwright, fake_cameras: Callable[[str], FakeCamera], tmp_path: Path,
    artifacts: Path,
) -> None:
    relay = coturn(path.server, tmp_path, secret=SECRET, allowed_peer=path.server.address)
    server = netns.serve(
        path.server, tmp_path, ALLOWED_HOSTS=path.server_public, TURN_SHARED_SECRET=SECRET,
        TURN_URLS=f"turn:{path.server.address}:3478?transport=udp,turn:{path.server.address}:3478?transport=tcp",
    )
    origin = f"http://{path.server_public}:{netns.SERVE_PORT}"
    browsers: list[Browser] = []
    try:
        pages = []
        for name in ("alice", "bob"):
            args = [*EVERYDAY_CHROMIUM_ARGS, f"--unsafely-treat-insecure-origin-as-secure={origin}",
                    f"--use-file-for-fake-video-capture={fake_cameras(name).path}"]
            browser = playwright.chromium.launch(executable_path=str(path.client.wrapper(CHROMIUM, tmp_path)),
                                                 args=args)
            browsers.append(browser)
            context = browser.new_context(permissions=["camera", "microphone"])
            context.set_default_timeout(20_000)
            pages.append(RoomPage(context.new_page(), name).open(origin, "/conference/", "through-the-relay"))
        started = time.monotonic()
        for page in pages:
            page.enter()
        alice, bob = pages
        alice.expect_camera_of("bob")
        bob.expect_camera_of("alice")
        seconds = time.monotonic() - started
        print(f"join → both see each other through the relay: {seconds:.2f} s")
        assert seconds < SEE_EACH_OTHER_S
        for page in pages:
            page.wait_publishing()
            pairs: dict[str, Any] = page.page.evaluate(SELECTED_PAIRS_JS)
            other = "bob" if page is alice else "alice"
            assert set(pairs) == {"camera", f"{other}/camera"}, pairs
            for pair in pairs.values():
                assert pair is not None, pairs
                # Chromium's side: a relay candidate it got from coturn over TCP;
                # the server's side: its own host candidate.
                assert pair["local"] == {"type": "relay", "address": path.server.address, "protocol": "tcp"}, pairs
                assert pair["remote"] == {"type": "host", "address": path.server.address, "protocol": None}, pairs
        # Frames keep coming at the fake camera's pace.
        video = alice.remote_video("bob").element_handle()
        assert video is not None
        before, at = video.evaluate(FRAMES_JS), time.monotonic()
        alice.page.wait_for_timeout(2000)  # a measuring window, not a wait for an event
        rate = (video.evaluate(FRAMES_JS) - before) / (time.monotonic() - at)
        assert rate >= 0.8 * FPS, rate
        # The router did drop the UDP Chromium sent to the server.
        assert path.home.counter("udp_to_server_dropped") > 0
        assert relay.log().count("incoming packet ALLOCATE processed, success") >= 4
        alice.screenshot(artifacts, "through-the-relay")
    finally:
        for browser in browsers:
            browser.close()
        server.stop()
        relay.stop()
