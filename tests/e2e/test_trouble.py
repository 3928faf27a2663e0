"""What a person sees when things go wrong before the call starts: the
server cannot be reached, or the camera is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.room_page import RoomPage
from tests.processes import ServerProcess

pytestmark = pytest.mark.integration

# What the browser does when a person clicks "Block" on the camera prompt.
CAMERA_REFUSED = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""


def test_an_unreachable_server_is_told_and_retried(
    start_server: Callable[..., ServerProcess], open_page: Callable[[str], Page], artifacts: Path
) -> None:
    server = start_server("daphne", "web")
    alice = RoomPage(open_page("alice"), "alice").open(server.http_url, "/conference/", "e2e-away")
    server.stop()  # the page is loaded, the server is gone
    alice.page.fill("#login", "alice")
    alice.page.click("#join")
    expect(alice.page.locator("#error")).to_contain_text("Server unreachable. Retrying in")
    expect(alice.page.locator("#status")).not_to_have_text("ESTABLISHED")
    alice.screenshot(artifacts, "unreachable")


def test_a_refused_camera_is_told_and_the_person_can_still_watch_and_chat(
    start_server: Callable[..., ServerProcess], open_page: Callable[[str], Page],
    room_pages: Callable[..., list[RoomPage]], artifacts: Path,
) -> None:
    server = start_server("daphne", "web")
    (bob,) = room_pages(server, "/conference/", "e2e-shy", "bob")
    shy = open_page("alice")
    shy.add_init_script(CAMERA_REFUSED)
    alice = RoomPage(shy, "alice").open(server.http_url, "/conference/", "e2e-shy")
    alice.page.fill("#login", "alice")
    alice.page.click("#join")
    expect(alice.page.locator("#error")).to_have_text(
        "Camera and microphone access was denied. You can still watch and chat."
    )
    expect(alice.page.locator("#status")).to_have_text("ESTABLISHED")
    alice.expect_camera_of("bob")
    alice.send_chat("no camera, still here")
    bob.wait_chat("alice", "no camera, still here")
    alice.screenshot(artifacts, "camera-refused")
