"""The production recipe of deploy/, run as written: Debian's nginx with TLS
and HTTP/2 in front of two daphne processes (conference-web@.service), one
external media node (conference-media@.service) and a Celery worker
(conference-worker.service) on Redis and PostgreSQL, every process with
deploy/env.example's settings (DEBUG off, HTTPS, token rooms, external media,
records through X-Accel-Redirect). Only what names this machine differs:
secrets, host, database, Redis, folders, and media kept on loopback.

Clients come in through https:// and wss:// only: protocol clients, a plain
HTTP client downloading a large record, and real Chromium pages whose people
log in, see each other, chat, record and download the mix.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser as ChromiumBrowser
from playwright.sync_api import Page, Playwright, expect
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from tests.conftest import TEST_REDIS_URL
from tests.e2e.cameras import make_camera
from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.room_page import RoomPage
from tests.processes import ServerProcess, free_port, manage, redis_keys_delete
from tests.recipe import Nginx, env_file, nginx_site, rss_kib, self_signed_certificate, unit_process

pytestmark = pytest.mark.integration

API_KEYS = "recipe:" + "production-recipe-secret-" * 2
PASSWORD = "a-long-password-for-the-recipe"
PAGE_TIMEOUT_MS = 20_000
# alice is a superuser: she moderates (so her page may record) and sees every record.
CREATE_ACCOUNTS = f"""
from django.contrib.auth.models import User
for name in ("alice", "bob"):
    user, _ = User.objects.get_or_create(username=name)
    user.is_staff = user.is_superuser = name == "alice"
    user.set_password({PASSWORD!r})
    user.save()
"""


@dataclass
class Deployment:
    nginx: Nginx
    web: list[ServerProcess]
    media: ServerProcess
    worker: ServerProcess
    env: dict[str, str]

    @property
    def origin(self) -> str:
        return self.nginx.url.rstrip("/")

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.nginx.https_port}/ws/rooms/"

    @property
    def recordings(self) -> Path:
        return Path(self.env["RECORDINGS_ROOT"])

    def web_logs(self) -> list[str]:
        return [web.log() for web in self.web]


def client_tls() -> ssl.SSLContext:
    """The test's certificate is self-signed: encrypt, do not verify."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.fixture(scope="module")
def deployment(integration_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One deployment for the module's tests: starting it takes seconds."""
    tmp_path = tmp_path_factory.mktemp("recipe")
    prefix = f"recipe-{uuid.uuid4().hex[:12]}"
    server_env = {
        **os.environ,
        "DATABASE_URL": integration_database,
        "REDIS_URL": TEST_REDIS_URL,
        "LIVE_STATE_PREFIX": prefix,
        "VAR_DIR": str(tmp_path / "var"),
        # Every client of the test comes from 127.0.0.1.
        "JOINS_PER_IP_PER_SECOND": "0",
        "PYTHONUNBUFFERED": "1",
    }
    production = env_file()
    assert (production["DEBUG"], production["HTTPS"], production["ROOM_AUTH"], production["MEDIA_NODES"]) == (
        "false", "true", "token", "external"
    )
    https_port, http_port = free_port(), free_port()
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    env = {
        **server_env,
        **production,
        # What names this machine instead of the example's.
        "SECRET_KEY": secrets.token_urlsafe(50),
        "API_KEYS": API_KEYS,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CSRF_TRUSTED_ORIGINS": f"https://127.0.0.1:{https_port}",
        "DATABASE_URL": server_env["DATABASE_URL"],
        "REDIS_URL": server_env["REDIS_URL"],
        "VAR_DIR": server_env["VAR_DIR"],
        "RECORDINGS_ROOT": str(recordings),
        # The suite keeps media on loopback (MEDIA_HOST_IP=127.0.0.1), which a
        # public server denies.
        "MEDIA_DENIED_PEER_NETWORKS": "",
    }
    manage(env, "collectstatic", "--noinput")
    manage(env, "shell", "-c", CREATE_ACCOUNTS)
    started: list[ServerProcess] = []
    nginx: Nginx | None = None
    try:
        web = []
        for number in (1, 2):
            port = free_port()
            process = unit_process("conference-web@.service", f"web{number}", env, tmp_path, instance=str(port),
                                   port=port)
            started.append(process.start())
            web.append(process)
        media = unit_process("conference-media@.service", "media", env, tmp_path, instance="1")
        started.append(media.start())
        worker = unit_process("conference-worker.service", "worker", env, tmp_path)
        started.append(worker.start())
        media.wait_for_log("media node ready")
        worker.wait_for_log(" ready.")

        certificate, key = self_signed_certificate(tmp_path)
        site = nginx_site({
            "SERVER_NAME": "127.0.0.1",
            "HTTP_LISTEN": f"127.0.0.1:{http_port}",
            "HTTPS_LISTEN": f"127.0.0.1:{https_port}",
            "CERTIFICATE": str(certificate),
            "CERTIFICATE_KEY": str(key),
            "WEB_1": f"127.0.0.1:{web[0].port}",
            "WEB_2": f"127.0.0.1:{web[1].port}",
            "STATIC_ROOT": str(Path(server_env["VAR_DIR"]) / "staticfiles"),
            "RECORDINGS_ROOT": str(recordings),
        })
        nginx = Nginx(tmp_path / "nginx", site, https_port=https_port).start()
        yield Deployment(nginx, web, media, worker, {**env, "HTTP_PORT": str(http_port)})
    finally:
        if nginx is not None:
            nginx.stop()
        for process in reversed(started):
            process.stop()
        redis_keys_delete(TEST_REDIS_URL, prefix)


def mint_tokens(env: dict[str, str], room: str, *identities: str) -> list[str]:
    """Access tokens as the application around the server mints them (signed with API_KEYS)."""
    code = (
        "from rooms.access_tokens import token_mint, grants_from_names\n"
        f"for identity in {list(identities)!r}:\n"
        f"    print(token_mint(identity=identity, grants=grants_from_names(['publish', 'subscribe', 'chat'],"
        f" room={room!r}), ttl_s=600))"
    )
    return manage(env, "shell", "-c", code).split()[-len(identities):]


def request(socket_: Any, type_: str, **fields: Any) -> dict[str, Any]:
    request_id = uuid.uuid4().hex[:8]
    socket_.send(json.dumps({"type": type_, "id": request_id, **fields}))
    while True:
        frame: dict[str, Any] = json.loads(socket_.recv(timeout=10))
        if frame.get("re") == request_id:
            return frame


def next_event(socket_: Any, type_: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(socket_.recv(timeout=10))
        if frame.get("type") == type_:
            return frame


def wss(deployment: Deployment) -> ClientConnection:
    """A WebSocket to the site over TLS, from a page of the site (its Origin)."""
    return connect(deployment.wss_url, ssl=client_tls(), origin=Origin(deployment.origin), open_timeout=10)


def test_wss_through_nginx_reaches_both_web_processes_with_tls_and_http2(deployment: Deployment) -> None:
    room = f"recipe-{uuid.uuid4().hex[:8]}"
    alice_token, bob_token = mint_tokens(deployment.env, room, "alice", "bob")
    tls = client_tls()
    with wss(deployment) as alice, wss(deployment) as bob:
        assert request(alice, "session.connect", token=alice_token)["status"] == "ESTABLISHED"
        assert request(bob, "session.connect", token=bob_token)["status"] == "ESTABLISHED"
        assert request(alice, "room.join", room=room)["type"] == "room.state"
        assert request(bob, "room.join", room=room)["type"] == "room.state"
        text = "через nginx 👋"
        assert request(alice, "room.message", room=room, text=text)["type"] == "ok"
        message = next_event(bob, "room.message")
        assert (message["message"]["from"], message["message"]["text"]) == ("alice", text)
        # A token-mode server refuses a session without a token.
        with wss(deployment) as anonymous:
            refused = request(anonymous, "session.connect", username="mallory")
            assert refused["status"] != "ESTABLISHED", refused
    # nginx spread the WebSockets over both daphne processes (round robin),
    # and each saw the client's address (--proxy-headers), not a proxy's.
    for log in deployment.web_logs():
        assert "WSCONNECT /ws/rooms/" in log, log

    # HTTP/2 is offered over TLS.
    with socket.create_connection(("127.0.0.1", deployment.nginx.https_port), timeout=5) as raw:
        alpn = client_tls()
        alpn.set_alpn_protocols(["h2", "http/1.1"])
        with alpn.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped:
            assert wrapped.selected_alpn_protocol() == "h2"
            assert wrapped.version() in ("TLSv1.2", "TLSv1.3")

    # Plain http:// is sent to https://.
    plain = http.client.HTTPConnection("127.0.0.1", int(deployment.env["HTTP_PORT"]), timeout=5)
    plain.request("GET", "/conference/?roomName=x")
    answer = plain.getresponse()
    assert (answer.status, answer.getheader("Location")) == (301, "https://127.0.0.1/conference/?roomName=x")
    plain.close()

    # Pages come from daphne with HTTPS hardening; static files from nginx's STATIC_ROOT.
    page = urllib.request.urlopen(deployment.nginx.url + "conference/", context=tls, timeout=10)
    assert page.status == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    static = urllib.request.urlopen(deployment.nginx.url + "static/roomapi.js", context=tls, timeout=10)
    collected = Path(deployment.env["VAR_DIR"]) / "staticfiles" / "roomapi.js"
    assert static.read() == collected.read_bytes()
    assert static.headers["Cache-Control"] == "max-age=3600"
    assert not [log for log in deployment.web_logs() if "/static/" in log]


class Browser:
    """A logged-in urllib client of the deployment (cookies, CSRF as a browser sends them)."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=client_tls()), urllib.request.HTTPCookieProcessor(self.cookies)
        )

    def log_in(self, username: str) -> None:
        url = self.deployment.nginx.url + "login/"
        form = self.opener.open(url, timeout=10).read().decode()
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert match, form
        body = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": match.group(1), "username": username, "password": PASSWORD, "next": "/records/"}
        ).encode()
        posted = urllib.request.Request(url, data=body, headers={"Origin": self.deployment.origin, "Referer": url})
        answer = self.opener.open(posted, timeout=10)
        assert answer.geturl().endswith("/records/"), answer.geturl()

    def cookie_header(self) -> str:
        return "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.cookies)


def test_a_large_record_is_sent_by_nginx_while_daphne_stays_flat(deployment: Deployment) -> None:
    size = 96 * 1024 * 1024
    name = f"big-{uuid.uuid4().hex[:8]}.webm"
    pattern = hashlib.sha256(name.encode()).digest() * (1024 * 1024 // 32)
    with (deployment.recordings / name).open("wb") as file:
        for _ in range(size // len(pattern)):
            file.write(pattern)
    recording_id = manage(deployment.env, "shell", "-c", (
        "import uuid; from recording.models import Recording; from rooms.models import Room; "
        f"room = Room.objects.create(name='big-record', live_id=uuid.uuid4().hex, status='FINALIZED'); "
        f"print(Recording.objects.create(room=room, kind='room', status='READY', file_path={name!r}).pk)"
    )).split()[-1]
    browser = Browser(deployment)
    browser.log_in("alice")

    path = f"/records/{recording_id}/download/"
    web_pids = [web.process.pid for web in deployment.web if web.process is not None]
    before = {pid: rss_kib(pid) for pid in web_pids}
    peak = dict(before)
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            for pid in web_pids:
                peak[pid] = max(peak[pid], rss_kib(pid))
            sampling.wait(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    digest = hashlib.sha256()
    connection = http.client.HTTPSConnection("127.0.0.1", deployment.nginx.https_port, context=client_tls(),
                                             timeout=30)
    try:
        connection.request("GET", path, headers={"Cookie": browser.cookie_header()})
        answer = connection.getresponse()
        headers = dict(answer.getheaders())
        received = 0
        while chunk := answer.read(1024 * 1024):
            digest.update(chunk)
            received += len(chunk)
        connection.request("GET", path, headers={"Cookie": browser.cookie_header(), "Range": "bytes=1000-1999"})
        ranged = connection.getresponse()
        ranged_body = ranged.read()
    finally:
        connection.close()
        sampling.set()
        sampler.join()

    assert answer.status == 200, headers
    assert received == size == int(headers["Content-Length"])
    assert digest.hexdigest() == hashlib.sha256((deployment.recordings / name).read_bytes()).hexdigest()
    assert "X-Accel-Redirect" not in headers  # nginx consumed it
    # nginx's ETag (mtime in seconds and size, in hex), not daphne's (mtime in nanoseconds).
    stat = (deployment.recordings / name).stat()
    assert headers["ETag"] == f'"{int(stat.st_mtime):x}-{size:x}"'
    assert headers["Content-Disposition"].startswith("attachment")
    assert ranged.status == 206 and ranged_body == (deployment.recordings / name).read_bytes()[1000:2000]
    # nginx sent the bytes; daphne answered with the redirect only.
    sent = [line for line in deployment.nginx.access_log().splitlines() if line.startswith(f"GET {path} 200 ")]
    assert len(sent) == 1 and int(sent[0].split()[3]) == size, deployment.nginx.access_log()
    growth_kib = {pid: peak[pid] - before[pid] for pid in web_pids}
    print(f"web RSS before {before} KiB, growth during a {size >> 20} MiB download {growth_kib} KiB")
    assert max(growth_kib.values()) < 8 * 1024, growth_kib


def mix_of(database_url: str, room: str) -> tuple[int, str, str] | None:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT r.id, r.status, r.file_path FROM recording_recording r JOIN rooms_room m ON m.id = r.room_id"
            " WHERE m.name = %s AND r.kind = 'room'",
            (room,),
        ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]))


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise TimeoutError(what)


def logged_in_room_page(page: Page, deployment: Deployment, name: str, room: str) -> RoomPage:
    """``name`` logs in on the site's login page over https://, which sends them back to the room."""
    page.goto(f"{deployment.nginx.url}login/?next={urllib.parse.quote(f'/conference/?roomName={room}', safe='/')}")
    page.fill("#id_username", name)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/conference/?roomName={room}")
    expect(page.locator("#account-name")).to_have_text(name)
    return RoomPage(page, name)


def join(room_page: RoomPage) -> None:
    room_page.page.click("#join")
    expect(room_page.page.locator("#status")).to_have_text("ESTABLISHED")
    room_page.wait_publishing()


def test_two_people_meet_chat_record_and_download_the_mix_through_https(
    deployment: Deployment, playwright: Playwright, tmp_path: Path
) -> None:
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    room = f"recipe-{uuid.uuid4().hex[:8]}"
    text = "Привет через nginx 👋"
    browsers: list[ChromiumBrowser] = []
    try:
        pages: dict[str, RoomPage] = {}
        for name in ("alice", "bob"):
            camera = make_camera(name, tmp_path)
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                *CHROMIUM_ARGS, "--ignore-certificate-errors", f"--use-file-for-fake-video-capture={camera.path}",
            ])
            browsers.append(browser)
            context = browser.new_context(
                permissions=["camera", "microphone"], ignore_https_errors=True, accept_downloads=True
            )
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            pages[name] = logged_in_room_page(context.new_page(), deployment, name, room)
        alice, bob = pages["alice"], pages["bob"]
        alice.page.check("#record")
        join(alice)
        join(bob)
        # Frames advance in each one's tile of the other, in the other's camera colour.
        alice.expect_camera_of("bob")
        bob.expect_camera_of("alice")
        protocol = alice.page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
        alice.send_chat(text)
        bob.wait_chat("alice", text)

        # The last leave finalizes the room; the Celery worker mixes its record.
        bob.leave()
        alice.leave()
        left_at = time.monotonic()
        def mix_done() -> tuple[int, str, str] | None:
            found = mix_of(deployment.env["DATABASE_URL"], room)
            return found if found and found[1] in ("READY", "FAILED") else None

        mix = wait_for(mix_done, 120, f"the mix of {room}")
        assert mix[1] == "READY", deployment.worker.log()
        mixed_after_s = time.monotonic() - left_at
        recording_id, _, file_path = mix
        alice.page.goto(f"{deployment.nginx.url}records/")
        with alice.page.expect_download() as download:
            alice.page.click(f"tr#recording-{recording_id} a[download]")
        downloaded = Path(download.value.path()).read_bytes()
    finally:
        for browser in browsers:
            browser.close()

    assert protocol == "h2"
    mixed = (deployment.recordings / file_path).read_bytes()
    assert downloaded == mixed and len(mixed) > 10_000
    print(f"mix READY {mixed_after_s:.1f} s after the last leave, {len(mixed)} bytes downloaded through nginx")
    path = f"/records/{recording_id}/download/"
    sent = [line for line in deployment.nginx.access_log().splitlines() if line.startswith(f"GET {path} 200 ")]
    assert sent and int(sent[-1].split()[3]) == len(mixed), deployment.nginx.access_log()
    # Over HTTP/2, and daphne answered the request (with the redirect nginx followed).
    assert sent[-1].split()[4] == "HTTP/2.0"
    assert any(f'"GET {path}" 200' in log for log in deployment.web_logs())
