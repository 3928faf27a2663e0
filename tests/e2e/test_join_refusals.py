"""What a person sees when the server refuses a join: the room is full, or
the login is already in the room."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.room_page import RoomPage
from tests.processes import ServerProcess

pytestmark = pytest.mark.integration


def refused_join(page: RoomPage) -> None:
    """Join and expect the page to be back at its start, with an error shown."""
    page.page.fill("#login", page.name)
    page.page.click("#join")
    expect(page.page.locator("#error")).to_be_visible()
    expect(page.page.locator("#join")).to_have_text("Join")


def test_a_third_joiner_of_a_room_for_two_is_told_it_is_full(
    start_server: Callable[..., ServerProcess], room_pages: Callable[..., list[RoomPage]], artifacts: Path
) -> None:
    server = start_server("daphne", "web", env={"ROOM_MAX_PARTICIPANTS": 2})
    alice, bob = room_pages(server, "/conference/", "e2e-full", "alice", "bob")
    (carol,) = room_pages(server, "/conference/", "e2e-full", "carol", join=False)

    refused_join(carol)
    expect(carol.page.locator("#error")).to_have_text("Room “e2e-full” is full. Try again later.")
    expect(carol.page.locator("[data-participant]")).to_have_count(0)
    carol.screenshot(artifacts, "room-full")
    # The two inside never saw carol and still see each other.
    for page, other in ((alice, "bob"), (bob, "alice")):
        expect(page.page.locator("[data-participant]")).to_have_count(1)
        page.expect_camera_of(other)


def test_a_login_already_in_the_room_is_refused_with_a_clear_message(
    start_server: Callable[..., ServerProcess], open_page: Callable[[str], Page], artifacts: Path
) -> None:
    server = start_server("daphne", "web")
    alice = RoomPage(open_page("alice"), "alice").open(server.http_url, "/conference/", "e2e-taken")
    alice.join()
    # Another person (bob's browser) tries the same login.
    impostor = RoomPage(open_page("bob"), "alice").open(server.http_url, "/conference/", "e2e-taken")

    refused_join(impostor)
    expect(impostor.page.locator("#error")).to_have_text(
        "The login “alice” is already in room “e2e-taken”. Choose another login."
    )
    impostor.screenshot(artifacts, "login-taken")
    expect(alice.page.locator("#status")).to_have_text("ESTABLISHED")
    expect(alice.page.locator("[data-participant]")).to_have_count(0)
