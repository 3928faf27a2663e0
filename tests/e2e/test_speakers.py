"""Active speaker in real Chromium: the pages highlight the tile of whoever
speaks, and the conference page moves the active speaker to the first tile.

Each browser's microphone is a WAV file: synthetic speech (espeak-ng) for
those who talk, silence for those who only listen. A talker falls silent by
muting its microphone on its page (the server then ranks it no more).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, expect

from tests.e2e.cameras import FakeCamera
from tests.e2e.chromium import CHROMIUM_ARGS
from tests.e2e.conftest import PAGE_TIMEOUT_MS
from tests.e2e.room_page import RoomPage
from tests.processes import ServerProcess

pytestmark = pytest.mark.integration

SPEECH = "Good morning everyone, let us start the weekly meeting with a short round of updates"
SPEAKING = re.compile(r"\bspeaking\b")
FIRST_TILE_JS = "() => document.querySelector('#tiles > .tile:not([hidden])')?.dataset.participant ?? null"


def _wav(path: Path, source: list[str]) -> Path:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *source, "-ar", "48000", "-ac", "1",
         "-c:a", "pcm_s16le", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("voices")
    spoken = folder / "espeak.wav"
    subprocess.run(["espeak-ng", "-w", str(spoken), SPEECH], check=True, timeout=60)
    return {
        "speech": _wav(folder / "speech.wav", ["-i", str(spoken)]),
        "silence": _wav(folder / "silence.wav", ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "4"]),
    }


@pytest.fixture(scope="module")
def voiced_browser(
    playwright: Playwright, browser_type_launch_args: dict[str, Any], fake_cameras: Callable[[str], FakeCamera],
    voices: dict[str, Path],
) -> Iterator[Callable[[str, str], Browser]]:
    """The Chromium whose camera is ``name``'s and whose microphone plays ``voice``."""
    browsers: dict[tuple[str, str], Browser] = {}

    def get(name: str, voice: str) -> Browser:
        if (name, voice) not in browsers:
            args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={fake_cameras(name).path}",
                    f"--use-file-for-fake-audio-capture={voices[voice]}"]
            browsers[(name, voice)] = playwright.chromium.launch(**{**browser_type_launch_args, "args": args})
        return browsers[(name, voice)]

    yield get
    for browser in browsers.values():
        browser.close()


@pytest.fixture
def voiced_pages(voiced_browser: Callable[[str, str], Browser]) -> Iterator[Callable[..., list[RoomPage]]]:
    """Open ``path`` for ``room`` once per (name, voice), join, and wait until each publishes."""
    contexts = []

    def open_(server: ServerProcess, path: str, room: str, *people: tuple[str, str]) -> list[RoomPage]:
        pages = []
        for name, voice in people:
            context = voiced_browser(name, voice).new_context(permissions=["camera", "microphone"])
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            contexts.append(context)
            pages.append(RoomPage(context.new_page(), name).open(server.http_url, path, room))
        for page in pages:
            page.enter()
        for page in pages:
            page.wait_publishing()
        return pages

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server("daphne", "web")


def tile(page: RoomPage, who: str) -> Any:
    return page.page.locator(f'[data-participant="{who}"]')


def wait_first_tile(page: RoomPage, who: str) -> None:
    page.page.wait_for_function(f"(who) => ({FIRST_TILE_JS})() === who", arg=who)


def test_the_conference_page_puts_the_active_speaker_first(
    server: ServerProcess, voiced_pages: Callable[..., list[RoomPage]], artifacts: Path
) -> None:
    alice, bob, carol = voiced_pages(
        server, "/conference/", "e2e-speakers", ("alice", "silence"), ("bob", "speech"), ("carol", "speech")
    )
    carol.page.click("#mute-audio")  # carol listens first
    for other in ("bob", "carol"):
        alice.expect_camera_of(other)
    # Carol joined last: her tile is last until she speaks.
    expect(tile(alice, "bob")).to_have_class(SPEAKING)
    wait_first_tile(alice, "bob")
    expect(tile(alice, "carol")).not_to_have_class(SPEAKING)
    expect(alice.page.locator("#local-tile")).not_to_have_class(SPEAKING)
    # Bob's own page shows him speaking.
    expect(bob.page.locator("#local-tile")).to_have_class(SPEAKING)

    # Turns change: bob falls silent, carol speaks.
    bob.page.click("#mute-audio")
    carol.page.click("#mute-audio")
    changed_at = time.monotonic()
    wait_first_tile(alice, "carol")
    expect(tile(alice, "carol")).to_have_class(SPEAKING)
    expect(tile(alice, "bob")).not_to_have_class(SPEAKING)
    print(f"the first tile changed {time.monotonic() - changed_at:.2f} s after the mute clicks")
    # The moved tiles play on.
    for other in ("bob", "carol"):
        alice.expect_camera_of(other)
    alice.screenshot(artifacts, "conference-speakers")


@pytest.mark.parametrize("path", ["/chat/", "/screen/"])
def test_the_two_way_and_screen_pages_highlight_the_speaker(
    server: ServerProcess, voiced_pages: Callable[..., list[RoomPage]], path: str
) -> None:
    room = "e2e-duo-" + path.strip("/")
    alice, bob = voiced_pages(server, path, room, ("alice", "silence"), ("bob", "speech"))
    expect(tile(alice, "bob")).to_have_class(SPEAKING)
    expect(alice.page.locator("#local-tile")).not_to_have_class(SPEAKING)
    expect(bob.page.locator("#local-tile")).to_have_class(SPEAKING)
    expect(tile(bob, "alice")).not_to_have_class(SPEAKING)
    level = float(tile(alice, "bob").get_attribute("data-level") or 0)
    assert 0.15 <= level <= 1.0, level
    bob.page.click("#mute-audio")
    expect(tile(alice, "bob")).not_to_have_class(SPEAKING)
