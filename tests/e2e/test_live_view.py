"""The live view in Chromium: an operator with the permission opens
/admin/live/, sees a room appear when two people join and publish, and
its figures change while the page stays the same page (no reload)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.cameras import FPS
from tests.e2e.room_page import RoomPage
from tests.processes import ServerProcess, manage

pytestmark = pytest.mark.integration

PASSWORD = "watcher-password-1"
CREATE_WATCHER = f"""
from django.contrib.auth.models import Permission, User
user, _ = User.objects.get_or_create(username="watcher", defaults={{"is_staff": True}})
user.set_password({PASSWORD!r})
user.save()
user.user_permissions.add(Permission.objects.get(codename="view_live_rooms", content_type__app_label="console"))
"""


@pytest.fixture
def server(start_server: Callable[..., ServerProcess], server_env: dict[str, str]) -> ServerProcess:
    manage(server_env, "shell", "-c", CREATE_WATCHER)
    return start_server("daphne", "web")


def _live_page(page: Page, server: ServerProcess) -> Page:
    page.goto(f"{server.http_url}admin/login/?next=/admin/")
    page.fill("#id_username", "watcher")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    page.click("#live-view-link a.section")
    page.wait_for_url("**/admin/live/")
    return page


def test_the_room_appears_and_its_figures_move_without_a_reload(
    server: ServerProcess, open_page: Callable[[str], Page], room_pages: Callable[..., list[RoomPage]],
    artifacts: Path,
) -> None:
    # In carol's Chromium (one of the suite's; the admin page uses no camera).
    page = _live_page(open_page("carol"), server)
    expect(page.locator("#live-rooms")).to_contain_text("No room is open.")
    expect(page.locator(".live-chart svg.chart")).to_have_count(3)
    # The database is shared by the session's server tests: count from here.
    rooms_caption = page.locator(".live-chart figcaption").first
    rooms_before = int(re.findall(r"30 days: (\d+)", rooms_caption.inner_text())[0])
    # Set once: a reload would lose it.
    page.evaluate("window.sameDocument = true")

    alice, bob = room_pages(server, "/conference/", "e2e-live", "alice", "bob")
    alice.expect_camera_of("bob")
    room = page.locator('section[data-room="e2e-live"]')
    expect(room).to_be_visible()
    expect(room.locator(".live-login")).to_have_text(["alice", "bob"])
    # Each camera at its file's frame rate (tests/e2e/cameras.py), played by the other.
    video = room.locator("tr[data-stream] .live-video")
    expect(video).to_have_count(2)
    near_fps = "|".join(str(fps) for fps in range(FPS - 2, FPS + 3))
    for row in range(2):
        expect(video.nth(row)).to_contain_text(re.compile(rf"\d kbit/s · ({near_fps})\.\d fps · loss"))
    expect(room.locator(".live-players")).to_have_text(["1", "1"])
    node = page.locator("#live-nodes tbody tr[data-node]")
    expect(node.locator(".live-legs")).to_have_text("2")
    expect(node.locator(".live-published")).to_have_text("2")

    # The page redraws itself: its update time moves on, in the same document.
    updated = page.locator("#live").get_attribute("data-updated-at")
    expect(page.locator("#live")).not_to_have_attribute("data-updated-at", updated or "")
    first_rates = node.locator(".live-bps-in").inner_text()
    page.wait_for_function(
        "text => document.querySelector('#live-nodes .live-bps-in').textContent !== text", arg=first_rates,
        timeout=15_000,
    )
    assert page.evaluate("window.sameDocument") is True
    # The charts are drawn with the page: loaded again, today has the room and its minutes.
    page.reload()
    expect(rooms_caption).to_contain_text(f"(30 days: {rooms_before + 1})")
    expect(room.locator(".live-players")).to_have_text(["1", "1"])
    page.screenshot(path=str(artifacts / "live-view.png"), full_page=True)

    page.evaluate("window.sameDocument = true")
    bob.leave()
    expect(room.locator(".live-login")).to_have_text(["alice"])
    expect(node.locator(".live-published")).to_have_text("1")
    assert page.evaluate("window.sameDocument") is True
    alice.leave()
