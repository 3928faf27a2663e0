"""Downloads from a real daphne to clients that stop reading stay in bounded memory.

Ten clients with tiny receive buffers ask for a 400 MiB record and read
nothing: daphne's resident memory may grow by at most 64 MiB (without
back-pressure it grew by the file's size per client). Meanwhile a client
that does read gets every byte, a seek (Range) gets 206 with the right
bytes, and each download from the start leaves its ``record.download``
audit entry.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.processes import ServerProcess, manage

pytestmark = pytest.mark.integration

FILE_BYTES = 400 * 2**20
STALLED_CLIENTS = 10
GROWTH_LIMIT_BYTES = 64 * 2**20
# How long the stalled clients are watched: without back-pressure daphne
# reads a sparse file of this size into memory in well under a second.
OBSERVATION_S = 4.0
MARKER_BYTES = 64 * 1024


def _record_file(path: Path) -> str:
    """A sparse 400 MiB file with random blocks at its start, every 32 MiB and its end; its sha256."""
    with path.open("wb") as file:
        file.truncate(FILE_BYTES)
        for offset in [*range(0, FILE_BYTES, 32 * 2**20), FILE_BYTES - MARKER_BYTES]:
            file.seek(offset)
            file.write(os.urandom(MARKER_BYTES))
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _stalled_download(port: int, path: str, cookie: str) -> socket.socket:
    """A client that sends its GET and then never reads (small receive buffer, set before connecting)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: sessionid={cookie}\r\n\r\n".encode())
    return sock


def _response_started(sock: socket.socket, timeout: float = 20) -> bytes:
    """The first bytes the server sent to a stalled client, peeked (the client still reads nothing)."""
    sock.settimeout(timeout)
    return sock.recv(64, socket.MSG_PEEK)


def _get(
    port: int, path: str, cookie: str, headers: dict[str, str] | None = None, *, requests: int = 1
) -> tuple[int, dict[str, str], str]:
    """A client that reads everything: status, headers and the body's sha256 (and its length).

    With ``requests`` > 1 it asks the same again on the same kept-alive
    connection, and answers with the last response.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(requests):
            connection.request("GET", path, headers={"Cookie": f"sessionid={cookie}", **(headers or {})})
            response = connection.getresponse()
            digest = hashlib.sha256()
            length = 0
            while chunk := response.read(2**20):
                digest.update(chunk)
                length += len(chunk)
        return response.status, {**dict(response.getheaders()), "body-length": str(length)}, digest.hexdigest()
    finally:
        connection.close()


def _open_files(pid: int, path: Path) -> int:
    """How many of the process's descriptors have ``path`` open."""
    count = 0
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(descriptor) == str(path)
        except FileNotFoundError:
            continue
    return count


def _wait_for(predicate: Any, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _download_audits(env: dict[str, str], recording_id: int) -> int:
    output = manage(env, "shell", "-c", (
        "from audit.models import AuditEntry; "
        f"print(AuditEntry.objects.filter(action='record.download', target='{recording_id}').count())"
    ))
    return int(output.strip().splitlines()[-1])


def test_stalled_downloads_stay_in_bounded_memory(
    start_server: Any, server_env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    whole_sha256 = _record_file(root / "big.webm")
    env = {**server_env, "RECORDINGS_ROOT": str(root)}
    live_id = uuid.uuid4().hex
    recording_id, cookie = manage(env, "shell", "-c", (
        "from django.contrib.auth.models import User; from django.test import Client; "
        "from recording.models import Recording; from rooms.models import Room; "
        f"room = Room.objects.create(name='slow-{live_id[:6]}', live_id='{live_id}', status='FINALIZED'); "
        "recording = Recording.objects.create(room=room, kind='room', status='READY', file_path='big.webm'); "
        f"user = User.objects.create_superuser('operator-{live_id[:6]}', password='a-long-operator-password'); "
        "client = Client(); client.force_login(user); "
        "print(recording.pk, client.cookies['sessionid'].value)"
    )).strip().splitlines()[-1].split()
    path = f"/records/{recording_id}/download/"
    web: ServerProcess = start_server("daphne", "web", env={"RECORDINGS_ROOT": str(root)})
    assert web.process is not None and web.port is not None
    pid, port = web.process.pid, web.port

    # Warm up the download path (imports, database connection) with a small seek.
    status, headers, _ = _get(port, path, cookie, {"Range": "bytes=1-65536"})
    assert status == 206, (status, headers)
    before = _rss_bytes(pid)

    stalled = [_stalled_download(port, path, cookie) for _ in range(STALLED_CLIENTS)]
    try:
        for sock in stalled:
            assert _response_started(sock).startswith(b"HTTP/1.1 200 OK"), "a stalled download got no response"
        peak = before
        deadline = time.monotonic() + OBSERVATION_S
        while time.monotonic() < deadline:
            peak = max(peak, _rss_bytes(pid))
            time.sleep(0.1)
        growth = peak - before
        print(f"daphne RSS {before / 2**20:.0f} MiB -> peak {peak / 2**20:.0f} MiB "
              f"(+{growth / 2**20:.1f} MiB) with {STALLED_CLIENTS} stalled downloads of {FILE_BYTES // 2**20} MiB")
        assert growth <= GROWTH_LIMIT_BYTES, f"daphne grew by {growth / 2**20:.0f} MiB"

        # While they stay stalled, a client that reads gets the whole file...
        started = time.monotonic()
        status, headers, body_sha256 = _get(port, path, cookie)
        print(f"whole file read at {FILE_BYTES / 2**20 / (time.monotonic() - started):.0f} MiB/s")
        assert status == 200, (status, headers)
        assert headers["body-length"] == str(FILE_BYTES)
        assert body_sha256 == whole_sha256
        # ...and a player's seeks the right bytes, here across a marker block,
        # twice on one kept-alive connection (the second streams as the first).
        start, end = 32 * 2**20 - 1000, 32 * 2**20 + 5000
        status, headers, range_sha256 = _get(port, path, cookie, {"Range": f"bytes={start}-{end}"}, requests=2)
        assert status == 206, (status, headers)
        assert headers["Content-Range"] == f"bytes {start}-{end}/{FILE_BYTES}"
        with (root / "big.webm").open("rb") as file:
            file.seek(start)
            assert range_sha256 == hashlib.sha256(file.read(end - start + 1)).hexdigest()
        assert _rss_bytes(pid) - before <= GROWTH_LIMIT_BYTES
        # The stalled downloads keep their files open, the finished ones not
        # (a response closes its file just after its last bytes went out).
        assert _wait_for(lambda: _open_files(pid, root / "big.webm") == STALLED_CLIENTS)
    finally:
        for sock in stalled:
            sock.close()
    # Clients that go away end their downloads: the files are closed.
    assert _wait_for(lambda: _open_files(pid, root / "big.webm") == 0), _open_files(pid, root / "big.webm")

    # Ten stalled downloads and one whole one started from byte 0; seeks leave no entry.
    assert _download_audits(env, int(recording_id)) == STALLED_CLIENTS + 1
    assert "Traceback" not in web.log(), web.log()
