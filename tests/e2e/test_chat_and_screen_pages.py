"""The two-way video chat page and the screen-sharing page in real Chromium."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.room_page import RoomPage
from tests.processes import ServerProcess

pytestmark = pytest.mark.integration

# Chromium's fake screen for getDisplayMedia.
FAKE_SCREEN = (1280, 720)


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server("daphne", "web")


def test_two_way_chat_page(server: ServerProcess, room_pages: Callable[..., list[RoomPage]], artifacts: Path) -> None:
    alice, bob = room_pages(server, "/chat/", "e2e-chat", "alice", "bob")
    alice.expect_camera_of("bob")
    bob.expect_camera_of("alice")

    alice.send_chat("Hallo Bob, grüß dich! ✓")
    bob.wait_chat("alice", "Hallo Bob, grüß dich! ✓")
    bob.send_chat("שלום עליכם")
    alice.wait_chat("bob", "שלום עליכם")
    for page in (alice, bob):
        page.screenshot(artifacts, "chat")


def test_shared_screen_reaches_the_other_side_at_full_size(
    server: ServerProcess, room_pages: Callable[..., list[RoomPage]], artifacts: Path
) -> None:
    alice, bob = room_pages(server, "/screen/", "e2e-screen", "alice", "bob")
    bob.expect_camera_of("alice")

    alice.page.click("#share")
    expect(alice.page.locator("#share")).to_have_attribute("aria-pressed", "true")
    screen = bob.remote_video("alice", "screen")
    bob.wait_frames(screen, 5)
    bob.wait_size(screen, *FAKE_SCREEN)
    expect(bob.page.locator('[data-participant="alice"] [data-slot="screen"] .stream-status')).to_have_text("PLAYING")
    # The camera goes on beside the screen.
    bob.expect_camera_of("alice")
    for page in (alice, bob):
        page.screenshot(artifacts, "screen")

    alice.page.click("#share")
    expect(screen).to_have_count(0)
