"""LOG_FORMAT=json on real processes (daphne, an external media node, a Celery
worker and beat): every line each of them writes is one JSON object, lines
say which room, session, identity, stream and node they are about, and a
secret in a query string reaches no line."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
from typing import Any

import pytest

from rooms.media.peer import use_host_address
from tests.media_clients import play, publish
from tests.processes import ServerProcess, free_port
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-9f8e7d6c5b4a"
ROOM = "logged"


def json_lines(process: ServerProcess) -> list[dict[str, Any]]:
    """Every line ``process`` wrote (standard output and error), each parsed; any other line fails."""
    records = []
    for number, line in enumerate(process.log().splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"{process.name} line {number} is not JSON: {line!r}") from None
        assert isinstance(record, dict), line
        assert {"timestamp", "level", "logger", "message"} <= record.keys(), line
        records.append(record)
    assert records, f"{process.name} logged nothing"
    return records


def page_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as page:
        return int(page.status)


def the_line(records: list[dict[str, Any]], logger: str, message_start: str, **fields: str) -> dict[str, Any]:
    found = [record for record in records if record["logger"] == logger and record["message"].startswith(message_start)
             and all(record.get(name) == value for name, value in fields.items())]
    assert found, f"no {logger} line {message_start!r} with {fields}: " + "\n".join(map(json.dumps, records[-40:]))
    return found[0]


async def test_every_line_is_json_and_says_whom_it_is_about(start_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    use_host_address("127.0.0.1")
    env = {"LOG_FORMAT": "json", "MEDIA_NODES": "external", "RECORDINGS_ROOT": str(tmp_path / "records")}
    node = start_server("medianode", "node", env=env)
    await asyncio.to_thread(node.wait_for_log, "media node ready")
    web = start_server("daphne", "web", env=env)
    worker = start_server("celery", "worker", env=env)
    beat = start_server("beat", "beat", env=env)
    await asyncio.to_thread(worker.wait_for_log, " ready.")

    # A secret in a query string: a page request and a WebSocket's.
    assert await asyncio.to_thread(page_status, f"{web.http_url}conference/?roomName={ROOM}&token={SECRET}") == 200
    alice = await SocketClient.open(f"{web.ws_url}?token={SECRET}")
    alice_session = (await alice.connect_session("alice"))["session"]
    bob = await SocketClient.open(web.ws_url)
    bob_session = (await bob.connect_session("bob"))["session"]
    assert (await alice.request("room.join", room=ROOM, record=True))["type"] == "room.state"
    assert (await bob.request("room.join", room=ROOM))["type"] == "room.state"
    assert (await alice.request("room.message", room=ROOM, text="hello"))["type"] == "ok"
    assert (await bob.event("room.message"))["message"]["text"] == "hello"
    camera = await publish(alice, ROOM)
    stream = camera.stream["id"]
    player = await play(bob, stream)
    await player.wait_for(lambda: len(player.counters) >= 15, timeout=20)
    assert (await bob.request("room.leave", room=ROOM))["type"] == "ok"
    assert (await alice.request("room.leave", room=ROOM, timeout=10))["type"] == "ok"
    # The last leave ends the room: the worker mixes its record.
    await asyncio.to_thread(worker.wait_for_log, "of media in", 60)
    for client in (alice, bob):
        await client.close()
    await player.pc.close()
    await camera.close()
    for process in (web, node, worker, beat):
        process.stop()  # their last lines too

    web_lines, node_lines = json_lines(web), json_lines(node)
    worker_lines, beat_lines = json_lines(worker), json_lines(beat)

    # The web process: the session's lines carry it, the join's the room too.
    the_line(web_lines, "rooms.services", "session connected", session=alice_session, identity="alice")
    the_line(web_lines, "rooms.services", "created the room", room=ROOM, session=alice_session, identity="alice")
    the_line(web_lines, "rooms.services", "joined the room", room=ROOM, session=bob_session, identity="bob")
    the_line(web_lines, "rooms.services", "left the room (leave)", room=ROOM, session=bob_session, identity="bob")
    # daphne's access log, in the same format, without the query.
    access = [record for record in web_lines if record["logger"] == "daphne.access"]
    page_lines = [record for record in access if record["message"] == "GET /conference/?REDACTED"]
    assert [record["status"] for record in page_lines] == [200], access
    assert any(record["message"].startswith("WSCONNECT /ws/rooms/") for record in access), access

    # The media node: its stream's lines name the stream, the node and the room.
    node_channel = the_line(node_lines, "rooms.management.commands.runmedianode", "media node ready")["node"]
    assert "media.node" in node_channel, node_channel
    for message in ("publish accepted", "stream publishing", "play accepted", "playing", "stream unpublished"):
        the_line(node_lines, "rooms.media.node", message, stream=stream, node=node_channel, room=ROOM)

    # The worker acts for the room.
    the_line(worker_lines, "recording.services", f"mixing room {ROOM}", room=ROOM)
    the_line(worker_lines, "recording.services", "mixed ", room=ROOM)
    assert any("celery" in record["logger"] for record in worker_lines)
    assert any(record["logger"].startswith("celery.beat") for record in beat_lines), beat_lines[:5]

    for process in (web, node, worker, beat):
        assert SECRET not in process.log(), process.name


def test_manage_py_serve_logs_json_lines_only(server_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The embedded default (daphne and a Celery worker with beat under manage.py serve)."""
    port = free_port()
    env = {**server_env, "LOG_FORMAT": "json", "REDIS_URL": ""}  # no Redis: the filesystem broker
    env.pop("CELERY_BROKER_URL", None)
    serve = ServerProcess("serve", [sys.executable, "manage.py", "serve", "--port", str(port)], env,
                          tmp_path / "serve.log", port=port)
    serve.start(timeout=60)
    try:
        serve.wait_for_log("Conference server running")
        assert page_status(f"{serve.http_url}chat/?roomName=x&invite={SECRET}") == 200
        serve.wait_for_log('"daphne.access"')
        serve.wait_for_log(" ready.")  # the worker
    finally:
        serve.stop()
    lines = json_lines(serve)
    the_line(lines, "rooms.management.commands.serve", "Conference server running: open http://127.0.0.1:")
    assert any(record["message"] == "GET /chat/?REDACTED" for record in lines if record["logger"] == "daphne.access")
    assert any(record["logger"].startswith("celery") for record in lines)
    assert SECRET not in serve.log()
