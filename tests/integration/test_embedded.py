"""`manage.py serve`: the embedded default a newcomer starts with `make run`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.processes import ROOT, free_port
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration


def _embedded_env(var_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    env.update(VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    return env


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _children_commands(pid: int) -> list[list[bytes]]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0") for child in children]


async def test_serve_runs_web_and_worker_on_sqlite_and_a_folder_broker(tmp_path: Path) -> None:
    port = free_port()
    env = _embedded_env(tmp_path / "var")
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        _wait_for(lambda: f"open http://127.0.0.1:{port}/" in log_path.read_text(), 60, "the URL to be printed")
        client = await _connect_when_listening(f"ws://127.0.0.1:{port}/ws/rooms/", "newcomer")
        state = await client.request("room.join", room="first-room")
        assert state["type"] == "room.state" and state["participants"] == []
        # daphne itself refuses a frame over the protocol's limit, with 1009.
        daphne = next(command for command in _children_commands(serve.pid) if command[1].endswith(b"daphne"))
        for option in (b"--websocket-max-message-size", b"--websocket-max-frame-size"):
            assert daphne[daphne.index(option) + 1] == b"65536", daphne
        await client.socket.send("x" * (64 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await client.next_frame()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        await client.close()
        assert (tmp_path / "var" / "db.sqlite3").exists()

        # A task sent through the folder broker is taken by the worker.
        broker = tmp_path / "var" / "celery-broker"
        subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); from rooms.tasks import sweep_rooms; "
             "sweep_rooms.delay()"],
            cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "conference_site.settings"}, check=True, timeout=60,
        )
        queued = lambda: [p for p in broker.glob("*.msg")]  # noqa: E731
        _wait_for(lambda: not queued(), 30, f"the worker to take the task; log:\n{log_path.read_text()}")
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        serve.wait(30)
    assert serve.returncode == 0, log_path.read_text()
    listing = subprocess.run(["ps", "-o", "pid=,stat=", "-s", str(serve.pid)], capture_output=True, text=True)
    alive = [line for line in listing.stdout.splitlines() if not line.split()[1].startswith("Z")]
    assert alive == [], "serve left processes running"


async def _connect_when_listening(url: str, username: str) -> SocketClient:
    deadline = time.monotonic() + 30
    while True:
        try:
            return await SocketClient.connected(url, username)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
