"""Recording across real processes: daphne with its media node, a Celery
worker on Redis (not eager mode), PostgreSQL, real aiortc publishers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import av
import psycopg
import pytest

from recording.sidecar import sidecar_read
from rooms.media.peer import use_host_address
from tests.media_clients import publish
from tests.media_tracks import BITS, SQUARE, read_counter
from tests.processes import manage
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def loopback_media() -> None:
    use_host_address("127.0.0.1")


@pytest.fixture
def recordings_root(server_env, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    root = tmp_path / "recordings"
    server_env["RECORDINGS_ROOT"] = str(root)
    return root


def recordings(database_url: str, room: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as connection:
        cursor = connection.execute(
            "SELECT r.kind, r.status, r.file_path, r.sidecar_path, r.size_bytes, r.duration_ms, r.failure_reason,"
            " r.participant, r.progress, r.hook_exit_status, r.hook_output, r.repaired"
            " FROM recording_recording r JOIN rooms_room m ON m.id = r.room_id WHERE m.name = %s ORDER BY r.id",
            (room,),
        )
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


async def wait_for_recordings(database_url: str, room: str, done, timeout: float) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Poll the rows another process writes until ``done(rows)``."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = recordings(database_url, room)
        if rows and done(rows):
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(f"recordings of {room} never got there: {rows}")


def probe(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


async def test_a_stream_record_follows_publish_and_leave(start_server, server_env, recordings_root) -> None:  # type: ignore[no-untyped-def]
    web = start_server("daphne", "web")
    alice = await SocketClient.connected(web.ws_url, "alice")
    await alice.request("room.join", room="taped")
    camera = await publish(alice, "taped", record=True)
    rows = await wait_for_recordings(server_env["DATABASE_URL"], "taped", lambda rows: True, timeout=5)
    assert [(row["kind"], row["status"], row["participant"]) for row in rows] == [("stream", "RECORDING", "alice")]
    await asyncio.sleep(2.5)  # the length of the record
    assert (await alice.request("room.leave", room="taped"))["type"] == "ok"
    rows = await wait_for_recordings(
        server_env["DATABASE_URL"], "taped", lambda rows: rows[0]["status"] != "RECORDING", timeout=10
    )
    row = rows[0]
    assert row["status"] == "READY" and row["failure_reason"] == ""
    path = recordings_root / row["file_path"]
    assert path == recordings_root / "taped" / f"{camera.stream['id']}.webm"
    info = probe(path)
    assert {stream["codec_name"] for stream in info["streams"]} == {"vp8", "opus"}
    assert 2.0 <= float(info["format"]["duration"]) <= 4.0
    assert abs(row["duration_ms"] / 1000 - float(info["format"]["duration"])) < 0.2
    assert row["size_bytes"] == path.stat().st_size > 50_000
    sidecar = sidecar_read(recordings_root / row["sidecar_path"])
    assert sidecar.stream == camera.stream["id"] and sidecar.ended_at_ms is not None
    await camera.close()
    await alice.close()


async def test_a_killed_process_leaves_a_partial_record_repaired_for_seeking(
    start_server, server_env, recordings_root
) -> None:  # type: ignore[no-untyped-def]
    doomed, survivor = start_server("daphne", "doomed"), start_server("daphne", "survivor")
    alice = await SocketClient.connected(doomed.ws_url, "alice")
    await alice.request("room.join", room="cut")
    camera = await publish(alice, "cut", record=True)
    await asyncio.sleep(4)  # media recorded before the crash
    # A connection starts the survivor's sweep, which finds the dead node
    # and closes (and repairs) its records.
    watcher = await SocketClient.connected(survivor.ws_url, "watcher")
    killed_at_ms = time.time() * 1000
    doomed.kill()
    def settled(rows: list[dict[str, Any]]) -> bool:
        return bool(rows[0]["repaired"]) or "not repaired" in rows[0]["failure_reason"]

    rows = await wait_for_recordings(server_env["DATABASE_URL"], "cut", settled, timeout=20)
    row = rows[0]
    assert (row["status"], row["repaired"]) == ("PARTIAL", True), row
    path = recordings_root / row["file_path"]
    assert path == recordings_root / "cut" / f"{camera.stream['id']}.webm"
    info = probe(path)
    assert {stream["codec_name"] for stream in info["streams"]} == {"vp8", "opus"}
    sidecar = sidecar_read(recordings_root / row["sidecar_path"])
    assert sidecar.ended_at_ms is None and sidecar.repaired  # it did not end properly, and was repaired
    # What the node received, from the first keyframe to the kill: the
    # header now says how long the file is, and lacks at most a second.
    recorded_s = (killed_at_ms - sidecar.started_at_ms) / 1000
    duration_s = float(info["format"]["duration"])
    assert recorded_s - 1.0 <= duration_s <= recorded_s + 0.1, (recorded_s, duration_s)
    assert abs(row["duration_ms"] / 1000 - duration_s) < 0.1 and row["size_bytes"] == path.stat().st_size
    assert b"\x1c\x53\xbb\x6b" in path.read_bytes()  # the Cues element: a seek index
    middle = duration_s / 2
    first, at_middle = counter_after_seek(path, 0.0), counter_after_seek(path, middle)
    assert at_middle[0] == pytest.approx(middle, abs=0.05)
    assert abs((at_middle[1] - first[1]) - 30 * (at_middle[0] - first[0])) <= 6  # 30 fps counter frames
    await camera.close()
    await watcher.close()

    player = await asyncio.to_thread(chromium_seek, survivor, server_env, "cut", middle)
    assert player["duration"] == pytest.approx(duration_s, abs=0.1)
    assert player["mediaTime"] == pytest.approx(middle, abs=0.1)
    # The picture shown is the frame recorded there, as PyAV decodes it.
    assert abs(player["counter"] - at_middle[1]) <= 3, (player, at_middle)


def counter_after_seek(path: Path, at_s: float) -> tuple[float, int]:
    """Seek the video to ``at_s`` through the file's index; the first frame there: its time and counter."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        container.seek(round(at_s / video.time_base), stream=video, backward=True)
        for frame in container.decode(video):
            if frame.time is not None and frame.time >= at_s - 0.02:
                return float(frame.time), read_counter(frame)
    raise AssertionError(f"no frame at {at_s} s in {path}")


CHROMIUM_SEEK_SCRIPT = """async ([moment, bits, square]) => {
  const video = document.querySelector("details.player[open] video");
  const once = (name) => new Promise((resolve, reject) => {
    video.addEventListener(name, resolve, {once: true});
    video.addEventListener("error", () => reject(new Error(video.error.message)), {once: true});
  });
  if (video.readyState < HTMLMediaElement.HAVE_METADATA) await once("loadedmetadata");
  const seeked = once("seeked");
  const presented = new Promise((resolve) => video.requestVideoFrameCallback((now, meta) => resolve(meta)));
  video.currentTime = moment;
  await seeked;
  const meta = await presented;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const context = canvas.getContext("2d");
  context.drawImage(video, 0, 0);
  let counter = 0;
  for (let bit = 0; bit < bits; bit++) {
    const [red] = context.getImageData(bit * square + square / 2, square / 2, 1, 1).data;
    if (red > 128) counter |= 1 << bit;
  }
  return {duration: video.duration, mediaTime: meta.mediaTime, counter};
}"""


def chromium_seek(web, server_env: dict[str, str], room: str, moment: float) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Open the room's records page in Chromium, play the record and seek to ``moment``."""
    from playwright.sync_api import sync_playwright

    with psycopg.connect(server_env["DATABASE_URL"]) as connection:
        row = connection.execute("SELECT live_id FROM rooms_room WHERE name = %s", (room,)).fetchone()
    assert row is not None
    records_url = manage(server_env, "shell", "-c", (
        "from recording.links import room_records_url; "
        f"print(room_records_url(room_live_id='{row[0]}', identity='alice'))"
    )).strip().splitlines()[-1]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(web.http_url + records_url.lstrip("/"))
            page.click("details.player summary")
            return page.evaluate(CHROMIUM_SEEK_SCRIPT, [moment, BITS, SQUARE])  # type: ignore[no-any-return]
        finally:
            browser.close()


async def test_synchronized_records_are_padded_by_the_worker(start_server, server_env, recordings_root) -> None:  # type: ignore[no-untyped-def]
    env = {"RECORDING_EMPTY_SHIFT": "true"}
    web = start_server("daphne", "web", env=env)
    worker = start_server("celery", "worker", env=env)
    worker.wait_for_log("ready.")
    alice = await SocketClient.connected(web.ws_url, "alice")
    bob = await SocketClient.connected(web.ws_url, "bob")
    await alice.request("room.join", room="sync")
    await bob.request("room.join", room="sync")
    alice_camera = await publish(alice, "sync", record=True)
    await asyncio.sleep(1.5)  # bob starts publishing later
    bob_camera = await publish(bob, "sync", record=True)
    await asyncio.sleep(1.5)
    await bob.request("room.leave", room="sync")
    await alice.request("room.leave", room="sync")  # the last leave finalizes the room

    def padded(rows: list[dict[str, Any]]) -> bool:
        sidecars = [sidecar_read(recordings_root / row["sidecar_path"]) for row in rows]
        return len(rows) == 2 and len({sidecar.started_at_ms for sidecar in sidecars}) == 1

    rows = await wait_for_recordings(server_env["DATABASE_URL"], "sync", padded, timeout=20)
    by_name = {row["participant"]: row for row in rows}
    bob_sidecar = sidecar_read(recordings_root / by_name["bob"]["sidecar_path"])
    assert 1.3 <= bob_sidecar.padded_ms / 1000 <= 2.5
    durations = {name: float(probe(recordings_root / row["file_path"])["format"]["duration"])
                 for name, row in by_name.items()}
    # Both records now run from the room's first stream start.
    assert abs(durations["alice"] - durations["bob"]) < 0.5, durations
    assert all(row["status"] == "READY" for row in rows)
    for client in (alice, bob):
        await client.close()
    for camera in (alice_camera, bob_camera):
        await camera.close()


@pytest.fixture
def hook(tmp_path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """An ON_MULTIPLE_RECORD_HOOK script that notes each call in a file."""
    calls = tmp_path / "hook-calls.txt"
    script = tmp_path / "on_multiple_record_hook.sh"
    script.write_text(f'#!/bin/sh\necho "$1 $2 $ROOM_NAME" >> {calls}\necho "mixed $2"\nexit 3\n')
    script.chmod(0o755)
    return script, calls


async def room_with_two_recorded_cameras(web, room: str, seconds: float) -> None:  # type: ignore[no-untyped-def]
    """alice creates a recorded room and publishes; bob comes later; both leave."""
    alice = await SocketClient.connected(web.ws_url, "alice")
    bob = await SocketClient.connected(web.ws_url, "bob")
    state = await alice.request("room.join", room=room, record=True)
    assert state["record"] is True
    await bob.request("room.join", room=room)
    alice_camera = await publish(alice, room, shade=200)  # recorded without asking: the room records
    await asyncio.sleep(seconds / 2)  # bob's camera joins the mix later
    bob_camera = await publish(bob, room, shade=90)
    await asyncio.sleep(seconds / 2)
    await bob.request("room.leave", room=room)
    await alice.request("room.leave", room=room, timeout=10)
    for client in (alice, bob):
        await client.close()
    for camera in (alice_camera, bob_camera):
        await camera.close()


async def test_room_multi_record_is_mixed_by_the_worker_then_the_hook_runs(
    start_server, server_env, recordings_root, hook
) -> None:  # type: ignore[no-untyped-def]
    script, calls = hook
    env = {"ON_MULTIPLE_RECORD_HOOK": str(script)}
    web = start_server("daphne", "web", env=env)
    worker = start_server("celery", "worker", env=env)
    worker.wait_for_log("ready.")
    await room_with_two_recorded_cameras(web, "mixed", seconds=4)

    rows = await wait_for_recordings(
        server_env["DATABASE_URL"], "mixed",
        lambda rows: any(row["kind"] == "room" and row["status"] in ("READY", "FAILED") for row in rows),
        timeout=60,
    )
    mix = next(row for row in rows if row["kind"] == "room")
    assert mix["status"] == "READY", mix
    assert sorted(row["participant"] for row in rows if row["kind"] == "stream") == ["alice", "bob"]
    path = recordings_root / mix["file_path"]
    info = probe(path)
    assert {stream["codec_name"] for stream in info["streams"]} == {"h264", "aac"}
    assert 3.5 <= float(info["format"]["duration"]) <= 6.0
    assert mix["progress"] == 100 and mix["size_bytes"] == path.stat().st_size
    # The hook ran once, with the mix's path and the room's name (in argv and
    # in ROOM_NAME); its exit status and output are kept.
    await wait_for_recordings(
        server_env["DATABASE_URL"], "mixed", lambda rows: any(row["hook_exit_status"] == 3 for row in rows), 10
    )
    assert calls.read_text().splitlines() == [f"{path} mixed mixed"]
    mix = next(row for row in recordings(server_env["DATABASE_URL"], "mixed") if row["kind"] == "room")
    assert mix["hook_output"].strip() == "mixed mixed"


async def test_a_worker_killed_while_mixing_leaves_one_whole_mix(
    start_server, server_env, recordings_root, hook
) -> None:  # type: ignore[no-untyped-def]
    script, calls = hook
    env = {"ON_MULTIPLE_RECORD_HOOK": str(script)}
    web = start_server("daphne", "web", env=env)
    worker = start_server("celery", "worker", env=env, pool="prefork")
    worker.wait_for_log("ready.")
    await room_with_two_recorded_cameras(web, "crashy", seconds=6)

    await wait_for_recordings(
        server_env["DATABASE_URL"], "crashy",
        lambda rows: any(row["kind"] == "room" and row["status"] == "MIXING" for row in rows), timeout=30,
    )
    killed = worker.kill_children()
    assert killed, "the worker had no pool process to kill"

    rows = await wait_for_recordings(
        server_env["DATABASE_URL"], "crashy",
        lambda rows: any(row["kind"] == "room" and row["status"] in ("READY", "FAILED") for row in rows),
        timeout=90,
    )
    mix = next(row for row in rows if row["kind"] == "room")
    assert mix["status"] == "READY", (mix, worker.log()[-3000:])
    assert "WorkerLostError" in worker.log() or "lost" in worker.log().lower()
    files = sorted(path.name for path in (recordings_root / "crashy").iterdir() if path.suffix == ".mp4")
    assert files == [Path(mix["file_path"]).name]  # one mix, no half-written leftovers
    assert not [path for path in (recordings_root / "crashy").iterdir() if path.name.startswith(".")]
    assert 5.0 <= float(probe(recordings_root / mix["file_path"])["format"]["duration"]) <= 8.0
    await wait_for_recordings(
        server_env["DATABASE_URL"], "crashy", lambda rows: any(row["hook_exit_status"] == 3 for row in rows), 10
    )
    assert len(calls.read_text().splitlines()) == 1


async def test_stopping_the_server_finishes_its_records(start_server, server_env, recordings_root) -> None:  # type: ignore[no-untyped-def]
    web = start_server("daphne", "web")
    alice = await SocketClient.connected(web.ws_url, "alice")
    await alice.request("room.join", room="closing")
    camera = await publish(alice, "closing", record=True)
    await asyncio.sleep(2)  # media recorded before the shutdown
    web.stop()  # SIGTERM
    rows = recordings(server_env["DATABASE_URL"], "closing")
    assert rows[0]["status"] == "READY", (rows, web.log()[-2000:])
    sidecar = sidecar_read(recordings_root / rows[0]["sidecar_path"])
    assert sidecar.ended_at_ms is not None
    assert 1.5 <= float(probe(recordings_root / rows[0]["file_path"])["format"]["duration"]) <= 4
    await camera.close()


async def test_a_record_refused_for_disk_is_told_to_the_publisher(start_server, server_env, recordings_root) -> None:  # type: ignore[no-untyped-def]
    recordings_root.mkdir()
    statvfs = os.statvfs(recordings_root)
    floor_mb = statvfs.f_bavail * statvfs.f_frsize // 1_000_000 + 1_000_000  # more than the disk has
    server_env["RECORDINGS_MIN_FREE_MB"] = str(floor_mb)
    web = start_server("daphne", "web")
    alice = await SocketClient.connected(web.ws_url, "alice")
    await alice.request("room.join", room="full")
    camera = await publish(alice, "full", record=True)  # published all the same
    told = await alice.event("stream.record", timeout=5)
    assert told == {"type": "stream.record", "stream": camera.stream["id"], "status": "FAILED", "info": "disk_full"}
    rows = await wait_for_recordings(server_env["DATABASE_URL"], "full", lambda rows: True, timeout=5)
    assert [(row["kind"], row["status"], row["file_path"]) for row in rows] == [("stream", "FAILED", "")]
    assert rows[0]["failure_reason"].endswith(f"below RECORDINGS_MIN_FREE_MB {floor_mb}")
    assert not any(path.is_file() for path in recordings_root.rglob("*"))
    await camera.close()
    await alice.close()
