"""The red recording indicator in real Chromium: the participant who starts
a recorded room sees it as it starts, one who joins the recorded room later
sees it with who started it, each before their camera's media flows; a room
that does not record shows none."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.room_page import RoomPage
from tests.processes import ServerProcess

pytestmark = pytest.mark.integration

ROOM = "e2e-recorded"
# Notes, in order, when the indicator is first shown and when the camera first publishes.
ORDER_WATCH = """() => {
  window.__order = [];
  const indicator = document.getElementById("recording-indicator");
  const local = document.getElementById("local-status");
  new MutationObserver(() => {
    if (!indicator.hidden && !window.__order.includes("indicator")) window.__order.push("indicator");
  }).observe(indicator, { attributes: true });
  new MutationObserver(() => {
    if (local.textContent === "PUBLISHING" && !window.__order.includes("publishing")) window.__order.push("publishing");
  }).observe(local, { childList: true, characterData: true, subtree: true });
}"""


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server("daphne", "web")


def opened(open_page: Callable[[str], Page], server: ServerProcess, name: str, room: str) -> RoomPage:
    page = RoomPage(open_page(name), name).open(server.http_url, "/conference/", room)
    expect(page.page.locator("#recording-indicator")).to_be_hidden()
    page.page.evaluate(ORDER_WATCH)
    return page


def expect_recorded_by(page: RoomPage, starter: str) -> None:
    indicator = page.page.locator("#recording-indicator")
    expect(indicator).to_be_visible()
    expect(indicator.locator(".recorded-by")).to_have_text(starter)
    # Red, as the pages promise: the indicator's background.
    colour = indicator.evaluate("(element) => getComputedStyle(element).backgroundColor")
    red, green, blue = (int(part) for part in colour.removeprefix("rgb(").removesuffix(")").split(","))
    assert red > 150 and green < 90 and blue < 90, colour
    page.wait_publishing()
    assert page.page.evaluate("window.__order") == ["indicator", "publishing"]


def test_everyone_in_a_recorded_room_sees_the_indicator_before_their_media_flows(
    server: ServerProcess, open_page: Callable[[str], Page], artifacts: Path
) -> None:
    alice = opened(open_page, server, "alice", ROOM)
    alice.page.check("#record")
    alice.enter()
    expect_recorded_by(alice, "alice")
    alice.wait_system_line("alice is recording the room")

    bob = opened(open_page, server, "bob", ROOM)  # bob does not ask for a record: the room records anyway
    bob.enter()
    expect_recorded_by(bob, "alice")
    bob.screenshot(artifacts, "recording-indicator")

    carol = opened(open_page, server, "carol", "e2e-not-recorded")
    carol.join()
    expect(carol.page.locator("#recording-indicator")).to_be_hidden()
    assert carol.page.evaluate("window.__order") == ["publishing"]

    bob.leave()
    expect(bob.page.locator("#recording-indicator")).to_be_hidden()
    expect(alice.page.locator("#recording-indicator")).to_be_visible()  # still recorded for those in it
