"""No Celery worker: a finalized recorded room is shown stale in the admin, and
mixed exactly once when a worker comes back. Real daphne, Celery beat and
worker on Redis, PostgreSQL, real aiortc publishers."""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from rooms.media.peer import use_host_address
from tests.integration.test_recording import recordings, room_with_two_recorded_cameras, wait_for_recordings
from tests.processes import ServerProcess, manage

pytestmark = pytest.mark.integration

STALE_AFTER_S = 3
STALE_FILTER = "admin/recording/recording/?stale=yes"


@pytest.fixture(autouse=True)
def loopback_media() -> None:
    use_host_address("127.0.0.1")


def operator_cookie(env: dict[str, str]) -> str:
    name = f"operator-{uuid.uuid4().hex[:6]}"
    return manage(env, "shell", "-c", (
        "from django.contrib.auth.models import User; from django.test import Client; "
        f"user = User.objects.create_superuser('{name}', password='a-long-operator-password'); "
        "client = Client(); client.force_login(user); print(client.cookies['sessionid'].value)"
    )).strip().splitlines()[-1]


def admin_page(web: ServerProcess, path: str, cookie: str) -> str:
    request = urllib.request.Request(web.http_url + path, headers={"Cookie": f"sessionid={cookie}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


async def wait_for_page(web: ServerProcess, path: str, cookie: str, done, timeout: float) -> str:  # type: ignore[no-untyped-def]
    """Poll an admin page until ``done(html)``: staleness is a matter of time, not of an event."""
    deadline = time.monotonic() + timeout
    html = ""
    while time.monotonic() < deadline:
        html = await asyncio.to_thread(admin_page, web, path, cookie)
        if done(html):
            return html
        await asyncio.sleep(0.3)
    raise AssertionError(f"{path} never got there:\n{html[-3000:]}")


def log_count_reached(process: ServerProcess, text: str, more: int, timeout: float = 30) -> None:
    """Wait until ``text`` appears ``more`` times more in the process's log than now."""
    wanted = process.log().count(text) + more
    deadline = time.monotonic() + timeout
    while process.log().count(text) < wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"{process.name} logged {text!r} fewer than {wanted} times")
        time.sleep(0.2)


async def test_without_a_worker_the_admin_says_stale_then_a_worker_mixes_once(
    start_server, server_env, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "recordings"
    calls = tmp_path / "hook-calls.txt"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$2" >> {calls}\n')
    hook.chmod(0o755)
    env = {
        "RECORDINGS_ROOT": str(root), "ON_MULTIPLE_RECORD_HOOK": str(hook),
        "RECORDING_STALE_AFTER_S": str(STALE_AFTER_S), "RECORDING_SWEEP_INTERVAL_S": "1",
    }
    server_env.update(env)
    web = start_server("daphne", "web")
    # Beat runs on while the worker is down, as in a deployment that lost only its worker.
    beat = start_server("beat", "beat")
    cookie = operator_cookie(server_env)
    await room_with_two_recorded_cameras(web, "waiting-mix", seconds=2)

    html = await wait_for_page(web, STALE_FILTER, cookie, lambda html: "waiting-mix" in html, timeout=30)
    assert "no worker has taken its records" in html
    database = server_env["DATABASE_URL"]
    mix = next(row for row in recordings(database, "waiting-mix") if row["kind"] == "room")
    assert mix["status"] == "RECORDING"  # nothing moved it: no worker
    recording_id = manage(server_env, "shell", "-c", (
        "from recording.models import Recording; "
        "print(Recording.objects.get(room__name='waiting-mix', kind='room').pk)"
    )).strip().splitlines()[-1]
    page = admin_page(web, f"admin/recording/recording/{recording_id}/change/", cookie)
    assert "This recording is stale: the room ended" in page and "no worker has taken its records" in page
    # A copy of the room's work queued by hand, as a sweep would have: the
    # backlog holds the same work twice.
    manage({**server_env, "RECORDING_SWEEP_INTERVAL_S": "300"}, "shell", "-c",
           "from recording.tasks import recordings_sweep; recordings_sweep()")
    beat.wait_for_log("recordings-sweep")

    worker = start_server("celery", "worker")
    worker.wait_for_log("ready.")
    rows = await wait_for_recordings(
        database, "waiting-mix",
        lambda rows: any(row["kind"] == "room" and row["status"] in ("READY", "FAILED") for row in rows),
        timeout=90,
    )
    mix = next(row for row in rows if row["kind"] == "room")
    assert mix["status"] == "READY", (mix, worker.log()[-3000:])
    await wait_for_recordings(
        database, "waiting-mix", lambda rows: any(row["hook_exit_status"] == 0 for row in rows), 10
    )
    # Let the backlog and three more sweeps (received, succeeded) pass, then count.
    await asyncio.to_thread(log_count_reached, worker, "recording.tasks.recordings_sweep", 6)
    assert worker.log().count("mixing room waiting-mix") == 1, worker.log()[-4000:]
    assert len(calls.read_text().splitlines()) == 1
    files = sorted(path.name for path in (root / "waiting-mix").iterdir() if path.suffix == ".mp4")
    assert files == [Path(mix["file_path"]).name]
    assert [row["status"] for row in recordings(database, "waiting-mix") if row["kind"] == "room"] == ["READY"]
    html = admin_page(web, STALE_FILTER, cookie)
    assert "waiting-mix" not in html and "0 results" in html
    page = admin_page(web, f"admin/recording/recording/{recording_id}/change/", cookie)
    assert "is stale" not in page
