"""A server restart in the middle of a conference: the pages notice, keep
retrying, and once a new server listens on the same port they are back in
the room, seeing each other again."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.room_page import RoomPage
from tests.processes import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def replacements() -> Iterator[list[ServerProcess]]:
    """Servers a test starts by hand; stopped when it ends."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def test_pages_reconnect_to_a_restarted_server_and_see_each_other_again(
    start_server: Callable[..., ServerProcess],
    room_pages: Callable[..., list[RoomPage]],
    replacements: list[ServerProcess],
    artifacts: Path,
) -> None:
    server = start_server("daphne", "web")
    alice, bob = room_pages(server, "/conference/", "e2e-restart", "alice", "bob")
    alice.expect_camera_of("bob")
    bob.expect_camera_of("alice")

    server.stop()
    for page in (alice, bob):
        expect(page.page.locator("#status")).not_to_have_text("ESTABLISHED")
        expect(page.page.locator("#error")).to_contain_text("Connection to the server lost")

    # Same port, same database and Redis prefix: the pages' URLs stay valid.
    log_path = server.log_path.with_name("web-restarted.log")
    restarted = dataclasses.replace(server, name="web-restarted", log_path=log_path, process=None)
    replacements.append(restarted.start())

    for page in (alice, bob):
        expect(page.page.locator("#status")).to_have_text("ESTABLISHED")
        page.wait_system_line("reconnected")
        expect(page.page.locator("#local-status")).to_have_text("PUBLISHING")
        expect(page.page.locator("#error")).to_be_hidden()
    alice.expect_camera_of("bob")
    bob.expect_camera_of("alice")
    alice.send_chat("back again ✓")
    bob.wait_chat("alice", "back again ✓")
    for page in (alice, bob):
        page.screenshot(artifacts, "restarted")
