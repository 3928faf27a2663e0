"""Real Chromium against real daphne processes.

Every participant is its own Chromium (Debian's, never a downloaded one)
whose fake camera plays that participant's y4m file, so pixels tell who
sent a video. The browsers stay up while this package's tests run; each
test opens its own contexts in them and closes them at the end. Each test
starts its own daphne (``start_server``: PostgreSQL, Redis under a fresh
prefix; under a second to start). All media stays on 127.0.0.1.

Pages come from ``open_page`` / ``room_pages``, not pytest-playwright's
``page``: its session-wide Playwright would outlive this package (see
``playwright`` below).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.e2e.cameras import FakeCamera, make_camera
from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.room_page import RoomPage
from tests.processes import ROOT, ServerProcess

ARTIFACTS = ROOT / "var" / "artifacts" / "e2e"
# Media on loopback is up within a second or two; a page that needs longer is broken.
PAGE_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def fake_cameras(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], FakeCamera]:
    folder = tmp_path_factory.mktemp("cameras")
    return lambda name: make_camera(name, folder)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright for this package only (pytest-playwright's lives for the session).

    While the sync API is started its event loop counts as running in this
    thread, so every asyncio test collected after this package would fail.
    """
    # expect() has a timeout of its own (5 s), shorter than the pages'.
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    with sync_playwright() as started:
        yield started


@pytest.fixture(scope="package")
def camera_browser(
    playwright: Playwright, browser_type_launch_args: dict[str, Any], fake_cameras: Callable[[str], FakeCamera]
) -> Iterator[Callable[[str], Browser]]:
    """The Chromium whose fake camera is ``name``'s, launched on first use."""
    browsers: dict[str, Browser] = {}

    def get(name: str) -> Browser:
        if name not in browsers:
            camera = fake_cameras(name)
            args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera.path}"]
            browsers[name] = playwright.chromium.launch(**{**browser_type_launch_args, "args": args})
        return browsers[name]

    yield get
    for browser in browsers.values():
        browser.close()


@pytest.fixture
def open_page(camera_browser: Callable[[str], Browser]) -> Iterator[Callable[[str], Page]]:
    """A fresh page in ``name``'s browser, with camera and microphone allowed.

    The console of every page is printed when the test ends, so a failing
    test shows what the pages said.
    """
    contexts = []
    consoles: list[tuple[str, list[str]]] = []

    def open_(name: str) -> Page:
        context = camera_browser(name).new_context(permissions=["camera", "microphone"])
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        lines: list[str] = []
        page.on("console", lambda message: lines.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: lines.append(f"pageerror: {error}"))
        consoles.append((name, lines))
        return page

    yield open_
    for name, lines in consoles:
        if lines:
            print(f"--- console of {name}'s page ---", *lines, sep="\n")
    for context in contexts:
        context.close()


@pytest.fixture
def room_pages(open_page: Callable[[str], Page]) -> Callable[..., list[RoomPage]]:
    """Open ``path`` of ``server`` for ``room``, one page per name, and join them.

    They enter the room in the order given; their cameras start side by side.
    """

    def open_(server: ServerProcess, path: str, room: str, *names: str, join: bool = True) -> list[RoomPage]:
        pages = [RoomPage(open_page(name), name).open(server.http_url, path, room) for name in names]
        if join:
            for page in pages:
                page.enter()
            for page in pages:
                page.wait_publishing()
        return pages

    return open_


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
