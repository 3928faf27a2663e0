"""Records access against a real daphne writing its access log, driven by real Chromium:
the link a participant gets in room.state opens the records page and a download, and
its grant appears in no request line; the admin login locks out after repeated failures."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from websockets.sync.client import connect

from recording.links import records_grant_from_token
from tests.processes import ServerProcess, manage
from tests.recording.records_access import link_token
from tests.wsclient import ORIGIN

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"


def request(socket: Any, type: str, **fields: Any) -> dict[str, Any]:
    """Send one request and return its reply, skipping the events in between."""
    request_id = uuid.uuid4().hex[:8]
    socket.send(json.dumps({"type": type, "id": request_id, **fields}))
    while True:
        frame: dict[str, Any] = json.loads(socket.recv(timeout=10))
        if frame.get("re") == request_id:
            return frame


def records_url_of_a_finished_room(web: ServerProcess, room: str, login: str) -> str:
    """Join ``room`` as ``login``, keep room.state's records_url, leave (the last leave finalizes it)."""
    with connect(web.ws_url, origin=ORIGIN, open_timeout=5) as socket:  # type: ignore[arg-type]
        assert request(socket, "session.connect", username=login)["status"] == "ESTABLISHED"
        state = request(socket, "room.join", room=room)
        assert state["type"] == "room.state", state
        assert request(socket, "room.leave", room=room)["type"] == "ok"
    url: str = state["records_url"]
    return url


def audit_entries(database_url: str, action: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as connection:
        cursor = connection.execute(
            "SELECT actor, room, target, host(address) AS address, detail FROM audit_auditentry"
            " WHERE action = %s ORDER BY id",
            (action,),
        )
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_a_records_link_opens_the_records_and_never_reaches_a_request_line(
    start_server: Any, server_env: dict[str, str], tmp_path: Path, playwright: Any
) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    (root / "mix.webm").write_bytes(b"\x1aE\xdf\xa3" + bytes(range(256)) * 64)
    # The test's own key, so that it can read the grant the server signs.
    env = {"RECORDINGS_ROOT": str(root), "SECRET_KEY": settings.SECRET_KEY}
    web = start_server("daphne", "web", access_log=True, env=env)
    room = f"records-{uuid.uuid4().hex[:8]}"
    records_url = records_url_of_a_finished_room(web, room, "alice")
    token = link_token(records_url)
    grant = records_grant_from_token(token)
    assert grant is not None and grant.identity == "alice"
    recording_id = manage({**server_env, **env}, "shell", "-c", (
        "from recording.models import Recording; from rooms.models import Room; "
        f"room = Room.objects.get(name='{room}', status='FINALIZED'); "
        "print(Recording.objects.create(room=room, kind='room', status='READY', file_path='mix.webm').pk)"
    )).strip().splitlines()[-1]

    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    try:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(10_000)
        requested: list[str] = []
        page.on("request", lambda sent: requested.append(sent.url))
        page.goto(web.http_url + records_url.lstrip("/"))
        # records.js posts the grant, gets the cookie and reloads: the room's records.
        page.wait_for_selector(f"tr#recording-{recording_id}")
        heading = page.inner_text("h1")
        shown_to = page.inner_text(".identity")
        address_bar = page.url
        with page.expect_download() as download_info:
            page.click(f"tr#recording-{recording_id} a[download]")
        downloaded = Path(download_info.value.path()).read_bytes()
        cookies = context.cookies()
        # The control: the access log does log the requests, but what a query carries never lands there.
        page.goto(web.http_url + "records/?canary=c4n4ry")

        # A link followed from another site (a mail, a chat): the SameSite=Strict
        # cookie is not sent with that navigation, the one after the exchange has it.
        elsewhere = browser.new_context().new_page()
        elsewhere.set_default_timeout(10_000)
        elsewhere.on("request", lambda sent: requested.append(sent.url))
        elsewhere.goto(f"http://localhost:{web.port}/")
        elsewhere.evaluate(
            "(href) => { const link = document.createElement('a'); link.href = href; link.id = 'mailed';"
            " link.textContent = 'records'; document.body.append(link); }",
            web.http_url + records_url.lstrip("/"),
        )
        elsewhere.click("#mailed")
        elsewhere.wait_for_selector(f"tr#recording-{recording_id}")
    finally:
        browser.close()

    assert heading.startswith("Records of room") and room in heading
    assert shown_to == "alice"
    assert address_bar == web.http_url + "records/"  # the fragment is gone from the address bar
    assert downloaded == (root / "mix.webm").read_bytes()
    (cookie,) = [cookie for cookie in cookies if cookie["name"] == "records_access"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/records/")

    # Neither the browser's requests nor daphne's access log ever held the grant.
    assert not [url for url in requested if token in url]
    access_log = (tmp_path / "web-access.log").read_text()
    assert '"GET /records/?REDACTED" 200' in access_log and "c4n4ry" not in access_log
    assert access_log.count('"POST /records/access/" 204') == 2
    assert f'"GET /records/{recording_id}/download/" 200' in access_log
    assert token not in access_log
    for part in token.split(":"):  # nor a piece of it, decoded or not
        assert part not in access_log
    assert token not in web.log()

    # The database is the whole run's: other tests' downloads have entries too.
    (entry,) = [
        entry for entry in audit_entries(server_env["DATABASE_URL"], "record.download")
        if entry["target"] == recording_id
    ]
    assert (entry["actor"], entry["room"], entry["target"], entry["address"]) == (
        "alice", room, recording_id, "127.0.0.1"
    )


def test_the_admin_login_locks_out_after_repeated_failures(
    start_server: Any, server_env: dict[str, str], playwright: Any
) -> None:
    env = {"LOGIN_FAILURE_LIMIT": "3"}
    operator = f"operator-{uuid.uuid4().hex[:6]}"
    manage({**server_env, **env}, "shell", "-c", (
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user('{operator}', password='a-long-operator-password', is_staff=True)"
    ))
    web = start_server("daphne", "web", env=env)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    try:
        page = browser.new_page()
        page.set_default_timeout(10_000)

        def log_in(password: str) -> tuple[int, str]:
            page.goto(web.http_url + "admin/login/")
            page.fill("#id_username", operator)
            page.fill("#id_password", password)
            with page.expect_navigation() as navigation:
                page.click("input[type=submit]")
            response = navigation.value
            return response.status, page.content()

        failures = [log_in("wrong")[0] for _ in range(2)]
        locked_status, locked_page = log_in("wrong")
        right_status, right_page = log_in("a-long-operator-password")
    finally:
        browser.close()
    assert failures == [200, 200]
    assert locked_status == 429 and "too many login attempts" in locked_page
    # Locked out: the right password does not get in either.
    assert right_status == 429 and "too many login attempts" in right_page
