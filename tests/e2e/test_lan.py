"""The first command's page in the browser a person really runs.

No test flag: Chromium without ``--allow-loopback-in-peer-connection`` and
with its mDNS candidate obfuscation left on, the server started as
``manage.py serve`` with the default media settings (no MEDIA_HOST_IP), so
the media node gathers on the machine's interface addresses. That needs a
non-loopback address, which the test makes in network namespaces of its
own (tests/netns.py): a server machine, and another device on its LAN.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from tests import netns
from tests.e2e.cameras import FakeCamera
from tests.e2e.chromium import CHROMIUM, EVERYDAY_CHROMIUM_ARGS
from tests.e2e.room_page import RoomPage
from tests.e2e.test_trouble import CAMERA_REFUSED
from tests.processes import ServerProcess

pytestmark = pytest.mark.integration

PORT = 8000  # the namespace is a machine of its own: make run's port is free there
# "Both see each other within 2 s of Join", with room for a loaded CI machine.
SEE_EACH_OTHER_S = 6.0
# What only a test sets; the server here runs as a person starts it.
TEST_SETTINGS = ("MEDIA_HOST_IP", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "LIVE_STATE_PREFIX",
                 "ALLOWED_HOSTS", "VAR_DIR", "MEDIA_UDP_PORTS", "ICE_SERVERS")

SDP_OF_PLAYS_JS = "() => window.conference.remoteStreams().map((s) => s.peerConnection?.localDescription?.sdp ?? '')"


@pytest.fixture
def lan() -> Iterator[netns.Lan]:
    with netns.lan() as built:
        yield built


@pytest.fixture
def serve(lan: netns.Lan, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``manage.py serve`` inside the server namespace, as a person runs it."""
    started: list[ServerProcess] = []

    def start(*options: str, **settings: str) -> ServerProcess:
        env = {name: value for name, value in os.environ.items() if name not in TEST_SETTINGS}
        env.update(VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1", **settings)
        args = lan.server.command(sys.executable, "manage.py", "serve", "--port", str(PORT), *options)
        server = ServerProcess("serve", args, env, tmp_path / "serve.log")
        started.append(server)
        server.start()
        server.wait_for_log("Conference server running", timeout=60)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def browser_in(
    playwright: Playwright, fake_cameras: Callable[[str], FakeCamera], tmp_path: Path
) -> Iterator[Callable[[netns.Host, str], Browser]]:
    """``name``'s Chromium, everyday flags only, running on ``host``."""
    browsers: list[Browser] = []

    def launch(host: netns.Host, name: str) -> Browser:
        args = [*EVERYDAY_CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={fake_cameras(name).path}"]
        browser = playwright.chromium.launch(executable_path=str(host.wrapper(CHROMIUM, tmp_path)), args=args)
        browsers.append(browser)
        return browser

    yield launch
    for browser in browsers:
        browser.close()


def page_of(browser: Browser, *, camera: bool = True) -> Page:
    # ignore_https_errors: the person accepts the self-signed certificate's warning.
    context = browser.new_context(permissions=["camera", "microphone"] if camera else [], ignore_https_errors=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    if not camera:
        page.add_init_script(CAMERA_REFUSED)
    return page


def join_and_time(pages: list[RoomPage]) -> float:
    """Click Join on every page; seconds from the first click until every page shows every other's camera."""
    started = time.monotonic()
    for page in pages:
        page.page.fill("#login", page.name)
        page.page.click("#join")
    for page in pages:
        for other in pages:
            if other is not page:
                page.wait_frames(page.remote_video(other.name), 1)
    return time.monotonic() - started


def selected_addresses(page: RoomPage) -> set[str]:
    connections = page.ice_pairs()
    assert connections and all(connection["selected"] for connection in connections), connections
    return {address for connection in connections for address in connection["selected"]}  # type: ignore[union-attr]


def test_two_browsers_on_the_server_machine_see_each_other_and_chat(
    lan: netns.Lan, serve: Callable[..., ServerProcess], browser_in: Callable[[netns.Host, str], Browser],
    artifacts: Path,
) -> None:
    server = serve()
    assert "open http://127.0.0.1:8000/" in server.log()
    alice, bob = (
        RoomPage(page_of(browser_in(lan.server, name)), name).open("http://127.0.0.1:8000", "/conference/", "lan-one")
        for name in ("alice", "bob")
    )
    seconds = join_and_time([alice, bob])
    print(f"join → both see each other: {seconds:.2f} s")
    assert seconds < SEE_EACH_OTHER_S
    for page, other in ((alice, "bob"), (bob, "alice")):
        page.wait_publishing()
        page.expect_camera_of(other)
        # Media runs on the machine's interface address, not on loopback.
        assert selected_addresses(page) == {lan.server.address}
    alice.send_chat("Привет из сети 👋")
    bob.wait_chat("alice", "Привет из сети 👋")
    bob.send_chat("你好")
    alice.wait_chat("bob", "你好")

    # Someone without a camera: Chromium hides its addresses behind mDNS
    # names; the node learns them from the browser's checks.
    carol = RoomPage(page_of(browser_in(lan.server, "carol"), camera=False), "carol").open(
        "http://127.0.0.1:8000", "/conference/", "lan-one"
    )
    carol.page.fill("#login", "carol")
    carol.page.click("#join")
    expect(carol.page.locator("#status")).to_have_text("ESTABLISHED")
    carol.expect_camera_of("alice")
    carol.expect_camera_of("bob")
    # Her offers name no address of hers (mDNS names at most; in a namespace
    # without multicast Chromium offers no host candidate at all): the node
    # learned where she is from her connectivity checks.
    offers = carol.page.evaluate(SDP_OF_PLAYS_JS)
    assert len(offers) == 2 and all(offers), offers
    candidates = [line for sdp in offers for line in sdp.splitlines() if line.startswith("a=candidate")]
    assert not [line for line in candidates if lan.server.address in line or ".local " not in line], candidates
    # Chromium does not even tell its own page the address it hid.
    assert selected_addresses(carol) == {"", lan.server.address}
    alice.screenshot(artifacts, "lan-same-machine")


def test_a_browser_on_another_device_joins_by_the_printed_address(
    lan: netns.Lan, serve: Callable[..., ServerProcess], browser_in: Callable[[netns.Host, str], Browser],
    artifacts: Path,
) -> None:
    server = serve("--host", "0.0.0.0", "--self-signed")
    printed = re.search(r"On this network: (https://\S+)", server.log())
    assert printed, server.log()
    lan_url = printed.group(1)
    assert lan_url == f"https://{lan.server.address}:8000/"

    alice = RoomPage(page_of(browser_in(lan.server, "alice")), "alice").open("https://127.0.0.1:8000", "/conference/",
                                                                             "lan-two")
    bob = RoomPage(page_of(browser_in(lan.device, "bob")), "bob").open(lan_url, "/conference/", "lan-two")
    seconds = join_and_time([alice, bob])
    print(f"join → both see each other across the LAN: {seconds:.2f} s")
    assert seconds < SEE_EACH_OTHER_S
    alice.expect_camera_of("bob")
    bob.expect_camera_of("alice")
    assert selected_addresses(bob) == {lan.device.address, lan.server.address}
    bob.send_chat("hello from the other laptop")
    alice.wait_chat("bob", "hello from the other laptop")
    bob.screenshot(artifacts, "lan-other-device")



def test_media_that_cannot_connect_is_told_in_plain_words(
    lan: netns.Lan, serve: Callable[..., ServerProcess], browser_in: Callable[[netns.Host, str], Browser],
) -> None:
    """A media node on an address the browser never pairs with (a loopback
    MEDIA_HOST_IP, as a firewall would do): FAILED ice_failed within
    seconds, and the page says what to check, instead of PENDING forever."""
    serve(MEDIA_HOST_IP="127.0.0.1")
    alice = RoomPage(page_of(browser_in(lan.server, "alice")), "alice").open("http://127.0.0.1:8000", "/conference/",
                                                                             "lan-blocked")
    alice.enter()
    expect(alice.page.locator("#local-status")).to_have_text("FAILED", timeout=15_000)
    assert alice.page.evaluate("() => window.conference.camera.info()") == "ice_failed"
    error = alice.page.locator("#error")
    expect(error).to_contain_text("Media could not connect")
    expect(error).to_contain_text("See README, Troubleshooting.")
