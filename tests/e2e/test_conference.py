"""The conference page in real Chromium: participants see each other's
cameras (told apart by colour), chat in several scripts, mute, leave."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.room_page import RoomPage
from tests.processes import ServerProcess

pytestmark = pytest.mark.integration

CHAT_TEXTS = {"alice": ["Привет 👋", "مرحبا"], "bob": ["你好，世界", "こんにちは🎉"]}  # noqa: RUF001 (CJK comma)


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server("daphne", "web")


def assert_media_on_loopback(page: RoomPage, expected: set[str]) -> None:
    """Every peer connection of the page nominated and selected 127.0.0.1 → 127.0.0.1."""
    connections = page.ice_pairs()
    assert {connection["name"] for connection in connections} == expected
    for connection in connections:
        nominated: list[list[str]] = connection["nominated"]  # type: ignore[assignment]
        selected: list[str] | None = connection["selected"]  # type: ignore[assignment]
        assert nominated and selected, connection
        assert {address for pair in [*nominated, selected] for address in pair} == {"127.0.0.1"}, connection


def test_two_participants_see_each_other_chat_and_leave(
    server: ServerProcess, room_pages: Callable[..., list[RoomPage]], artifacts: Path
) -> None:
    alice, bob = room_pages(server, "/conference/", "e2e-two", "alice", "bob")
    alice.wait_system_line("bob joined")
    bob.wait_system_line("participants: alice")

    alice.expect_camera_of("bob")
    bob.expect_camera_of("alice")
    for page, other in ((alice, "bob"), (bob, "alice")):
        expect(page.page.locator(f'[data-participant="{other}"] .stream-status')).to_have_text("PLAYING")
        assert_media_on_loopback(page, {"camera", f"{other}/camera"})

    for sender in (alice, bob):
        for text in CHAT_TEXTS[sender.name]:
            sender.send_chat(text)
    for sender, receiver in ((alice, bob), (bob, alice)):
        for text in CHAT_TEXTS[sender.name]:
            receiver.wait_chat(sender.name, text)
            sender.wait_chat(sender.name, text)
    for page in (alice, bob):
        page.screenshot(artifacts, "conference-two")

    bob.leave()
    alice.wait_system_line("bob left")
    expect(alice.page.locator('[data-participant="bob"]')).to_have_count(0)
    # Bob keeps a link to the room's records page, its grant in the fragment.
    records = bob.page.locator("#records-link a")
    expect(records).to_be_visible()
    expect(records).to_have_attribute("href", re.compile(r"^/records/#access=[\w.:-]+$"))
    assert bob.page.request.get(f"{server.http_url}records/").status == 403  # not opened yet, not an operator
    records.click()
    # records.js exchanged the grant for a cookie and reloaded: the room's records.
    expect(bob.page.locator("h1")).to_contain_text("Records of room")
    expect(bob.page.locator("h1")).to_contain_text("e2e-two")
    expect(bob.page).to_have_url(f"{server.http_url}records/")
    assert bob.page.request.get(f"{server.http_url}records/").status == 200


def test_three_participants_each_see_two_cameras(
    server: ServerProcess, room_pages: Callable[..., list[RoomPage]], artifacts: Path
) -> None:
    pages = room_pages(server, "/conference/", "e2e-three", "alice", "bob", "carol")
    for page in pages:
        expect(page.page.locator("[data-participant]")).to_have_count(2)
        for other in pages:
            if other is not page:
                page.expect_camera_of(other.name)

    greetings = {"alice": "Привет 👋", "bob": "你好，世界", "carol": "مرحبا 🎉"}  # noqa: RUF001 (CJK comma)
    for page in pages:
        page.send_chat(greetings[page.name])
    for page in pages:
        for sender, text in greetings.items():
            page.wait_chat(sender, text)
        page.screenshot(artifacts, "conference-three")


def test_muting_shows_at_the_other_side_and_unmuting_brings_the_video_back(
    server: ServerProcess, room_pages: Callable[..., list[RoomPage]], artifacts: Path
) -> None:
    alice, bob = room_pages(server, "/conference/", "e2e-mute", "alice", "bob")
    bob.expect_camera_of("alice")
    flags = bob.page.locator('[data-participant="alice"] .flags')

    # The server stops forwarding a muted kind; bob's page hides alice's
    # last frame and says why.
    alice.page.click("#mute-video")
    expect(alice.page.locator("#mute-video")).to_have_attribute("aria-pressed", "true")
    expect(flags).to_have_text("camera off")
    expect(bob.remote_video("alice")).to_be_hidden()
    alice.page.click("#mute-audio")
    expect(alice.page.locator("#mute-audio")).to_have_attribute("aria-pressed", "true")
    expect(flags).to_have_text("mic off · camera off")
    bob.screenshot(artifacts, "conference-muted")

    alice.page.click("#mute-video")
    expect(flags).to_have_text("mic off")
    expect(bob.remote_video("alice")).to_be_visible()
    bob.expect_camera_of("alice")
