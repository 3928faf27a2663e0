"""A browser publishing by WHIP with nothing but fetch and RTCPeerConnection,
from another origin (CORS preflight, exposed Location and ETag), seen on a
conference page as any other camera, and gone from it after its DELETE."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.cameras import nearest_camera
from tests.e2e.room_page import CAMERA_COLOUR_TOLERANCE, RoomPage
from tests.processes import ServerProcess

pytestmark = pytest.mark.integration

WHIP_TOKEN = "a-whip-secret-for-the-browser-test"

# RFC 9725 as a page would do it: gather every candidate, post the offer, take the answer.
WHIP_PUBLISH_JS = """async ([endpoint, token]) => {
  const media = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) pc.addTransceiver(track, {direction: 'sendonly'});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
  });
  const response = await fetch(endpoint, {
    method: 'POST', body: pc.localDescription.sdp,
    headers: {'Content-Type': 'application/sdp', 'Authorization': `Bearer ${token}`},
  });
  const body = await response.text();
  if (response.status !== 201) return {status: response.status, body};
  await pc.setRemoteDescription({type: 'answer', sdp: body});
  const location = new URL(response.headers.get('Location'), endpoint).href;
  window.whip = {pc, location, token};
  return {status: response.status, location, etag: response.headers.get('ETag'),
          contentType: response.headers.get('Content-Type')};
}"""

WHIP_DELETE_JS = """async () => {
  const response = await fetch(window.whip.location, {
    method: 'DELETE', headers: {'Authorization': `Bearer ${window.whip.token}`},
  });
  window.whip.pc.close();
  return response.status;
}"""


def test_chromium_publishes_by_whip_into_a_conference(
    start_server: Callable[..., ServerProcess],
    room_pages: Callable[..., list[RoomPage]],
    open_page: Callable[[str], Page],
    artifacts: Path,
) -> None:
    server = start_server("daphne", "web", env={"WHIP_TOKEN": WHIP_TOKEN})
    (bob,) = room_pages(server, "/conference/", "e2e-whip", "bob")

    # The encoder's page is on 127.0.0.1, the WHIP endpoint on localhost: another origin.
    encoder = open_page("alice")
    encoder.goto(f"{server.http_url}healthz")
    endpoint = f"http://localhost:{server.port}/whip/e2e-whip"
    started: dict[str, Any] = encoder.evaluate(WHIP_PUBLISH_JS, [endpoint, WHIP_TOKEN])
    assert started["status"] == 201, started
    assert started["location"].startswith(f"http://localhost:{server.port}/whip/e2e-whip/")
    assert started["etag"].startswith('"') and started["contentType"] == "application/sdp"

    tile = bob.page.locator('[data-participant^="whip-"]')
    expect(tile).to_have_count(1)
    name = tile.get_attribute("data-participant")
    assert name is not None
    colour = bob.colour_of(bob.remote_video(name))
    seen, distance = nearest_camera(colour)
    assert seen == "alice" and distance < CAMERA_COLOUR_TOLERANCE, (colour, seen, distance)
    bob.wait_frames(bob.remote_video(name), 10)
    bob.screenshot(artifacts, "whip-publisher")

    assert encoder.evaluate(WHIP_DELETE_JS) == 200
    expect(tile).to_have_count(0)
    expect(bob.page.locator("#status")).to_have_text("ESTABLISHED")
