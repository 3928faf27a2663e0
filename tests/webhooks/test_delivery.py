"""Webhooks end to end: real daphne, a real Celery worker with beat, real clients, a real receiver.

The receiver is down for the first 10 seconds; every event of two rooms
must then arrive exactly once (by webhook-id), verified with
standardwebhooks, in the order the server logged each room's events, even
the events that happen once the receiver is back while the room's earlier
ones still wait for their retry.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from rooms.media.peer import use_host_address
from tests.media_clients import publish
from tests.webhooks.receiver import Received, WebhookReceiver
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
OUTAGE_S = 10


@pytest.fixture(autouse=True)
def loopback_media() -> None:
    use_host_address("127.0.0.1")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    down = WebhookReceiver(SECRET)
    yield down
    down.close()


def delivery_log(database_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as connection:
        cursor = connection.execute(
            "SELECT webhook_id, event, room, room_key, status, attempts, last_error"
            " FROM webhooks_webhookdelivery ORDER BY id"
        )
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def types_of(requests: list[Received], room: str) -> list[str]:
    return [
        request.payload["type"] for request in requests if request.payload and request.payload["data"]["room"] == room
    ]


async def test_every_event_arrives_once_and_in_room_order_after_the_receiver_was_down(  # type: ignore[no-untyped-def]
    start_server, server_env, receiver: WebhookReceiver, tmp_path
) -> None:
    env = {
        "WEBHOOK_URLS": receiver.url,
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_RETRY_BASE_S": "1",
        "WEBHOOK_SWEEP_INTERVAL_S": "2",
        "RECORDINGS_ROOT": str(tmp_path / "recordings"),
    }
    web = start_server("daphne", "web", env=env)
    worker = start_server("celery", "worker", env=env, beat=True)
    worker.wait_for_log("ready.")
    down_since = time.monotonic()

    alice = await SocketClient.connected(web.ws_url, "alice")
    bob = await SocketClient.connected(web.ws_url, "bob")
    carol = await SocketClient.connected(web.ws_url, "carol")
    assert (await alice.request("room.join", room="weekly"))["type"] == "room.state"
    assert (await bob.request("room.join", room="weekly"))["type"] == "room.state"
    # A recorded room in which nobody publishes: its mix fails (recording_failed).
    assert (await carol.request("room.join", room="retro", record=True))["type"] == "room.state"
    camera = await publish(alice, "weekly", record=True)
    await asyncio.sleep(1)  # the length of the stream record
    unpublished = await alice.request("stream.unpublish", stream=camera.stream["id"])
    assert unpublished["status"] == "UNPUBLISHED"
    await camera.close()
    assert (await bob.request("room.leave", room="weekly"))["type"] == "ok"
    assert (await alice.request("room.leave", room="weekly"))["type"] == "ok"  # the last leave finalizes
    for client in (alice, bob):
        await client.close()

    expected = {
        "weekly": ["room_started", "participant_joined", "participant_joined", "stream_published",
                   "stream_unpublished", "recording_ready", "participant_left", "participant_left",
                   "room_finished"],
        "retro": ["room_started", "participant_joined", "participant_left", "room_finished", "recording_failed"],
    }
    during_outage = [*expected["weekly"], "room_started", "participant_joined"]  # carol stays in retro
    log: list[dict[str, Any]] = []
    # The mix behind recording_ready runs on the worker; a busy machine slows it.
    deadline = time.monotonic() + 45
    while sorted(row["event"] for row in log) != sorted(during_outage):
        assert time.monotonic() < deadline, f"the server never logged every event: {log}"
        await asyncio.sleep(0.2)
        log = delivery_log(server_env["DATABASE_URL"])
    assert receiver.received == []  # nothing can arrive while it is down
    assert {row["status"] for row in log} == {"pending"}

    await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_since)))  # the outage is what is tested
    receiver.up()
    up_at = time.monotonic()
    # Retro's first events wait for their next retry (seconds away): the
    # events of carol's leave, logged now, must not overtake them.
    assert [row["status"] for row in delivery_log(server_env["DATABASE_URL"]) if row["room"] == "retro"] == [
        "pending", "pending"
    ]
    assert (await carol.request("room.leave", room="retro"))["type"] == "ok"
    await carol.close()
    total = sum(len(events) for events in expected.values())
    await asyncio.to_thread(receiver.wait_for, lambda requests: len(requests) >= total, 40)
    log = delivery_log(server_env["DATABASE_URL"])
    deadline = time.monotonic() + 20
    while {row["status"] for row in log} != {"delivered"}:  # the last answer is being written down
        assert time.monotonic() < deadline, log
        await asyncio.sleep(0.2)
        log = delivery_log(server_env["DATABASE_URL"])

    received = receiver.received
    # Every request verified with the secret, and each id came exactly once.
    assert [request.verify_error for request in received] == [""] * len(received)
    ids = [request.webhook_id for request in received]
    assert sorted(ids) == sorted(row["webhook_id"] for row in log) and len(set(ids)) == len(ids)
    # Per room, in the order the server logged the events.
    for room in expected:
        logged = [row["webhook_id"] for row in log if row["room"] == room]
        arrived = [request.webhook_id for request in received if request.payload["data"]["room"] == room]  # type: ignore[index]
        assert arrived == logged, room
    weekly, retro = types_of(received, "weekly"), types_of(received, "retro")
    assert retro == expected["retro"]
    # The recording's readiness races the leaves that followed the unpublish; everything else is fixed.
    assert [event for event in weekly if event != "recording_ready"] == [
        event for event in expected["weekly"] if event != "recording_ready"
    ]
    assert weekly.index("recording_ready") > weekly.index("stream_unpublished")
    # The first event of each room was tried while the receiver was down, and retried.
    for room in expected:
        assert next(row for row in log if row["room"] == room)["attempts"] >= 2
    assert time.monotonic() - up_at < 30
    payloads = {request.payload["type"]: request.payload for request in received}  # type: ignore[index]
    ready = payloads["recording_ready"]["data"]["recording"]
    assert ready["kind"] == "stream" and ready["status"] == "READY" and ready["participant"] == "alice"
    assert ready["stream_id"] == camera.stream["id"] and ready["file_url"] == f"/records/{ready['id']}/download/"
    assert payloads["recording_failed"]["data"]["recording"]["reason"] == "no stream of the room was recorded"
    assert payloads["stream_published"]["data"]["stream"]["kind"] == "camera"
