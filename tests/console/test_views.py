"""The live view's page and state.json: who may see them, and what state.json says
of a room made through the real services (in-process media node, aiortc peers)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission, User
from django.test import AsyncClient, Client

from conference_site.broker_queue import queue_lengths
from rooms.media.peer import use_host_address
from tests.media_clients import play, publish
from tests.wsclient import ProtocolClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media_setup(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_HOST_IP = "127.0.0.1"
    use_host_address("127.0.0.1")


def _staff(name: str, *, allowed: bool) -> User:
    # No password (force_login needs none): hashing one costs a second a user.
    user = User.objects.create_user(name, f"{name}@example.com", None, is_staff=True)
    if allowed:
        user.user_permissions.add(Permission.objects.get(codename="view_live_rooms", content_type__app_label="console"))
    return user


def test_who_may_see_the_page() -> None:
    client = Client()
    anonymous = client.get("/admin/live/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    assert client.get("/admin/live/state.json").status_code == 403

    client.force_login(User.objects.create_user("member", "m@example.com", None))
    assert client.get("/admin/live/").status_code == 302  # not staff: the admin's login
    assert client.get("/admin/live/state.json").status_code == 403

    client.force_login(_staff("clerk", allowed=False))
    assert client.get("/admin/live/").status_code == 403
    assert client.get("/admin/live/state.json").status_code == 403
    assert "/admin/live/" not in client.get("/admin/").content.decode()

    client.force_login(_staff("watcher", allowed=True))
    page = client.get("/admin/live/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-state-url="/admin/live/state.json"' in text and "console/live.js" in text
    assert text.count("<svg class=\"chart\"") == 3 and "Participant-minutes per day" in text
    assert "/admin/live/" in client.get("/admin/").content.decode()
    state = client.get("/admin/live/state.json")
    assert state.status_code == 200 and state.json()["rooms"] == []

    client.force_login(User.objects.create_superuser("root", "r@example.com", None))
    assert client.get("/admin/live/").status_code == 200


async def _state_until(client: AsyncClient, ready: Any, timeout: float = 10) -> dict[str, Any]:
    """state.json, asked again until ``ready(state)`` (the node writes its rates once a heartbeat)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get("/admin/live/state.json")
        assert response.status_code == 200
        state: dict[str, Any] = response.json()
        if ready(state) or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.2)


def _stream(state: dict[str, Any]) -> dict[str, Any] | None:
    for room in state["rooms"]:
        for participant in room["participants"]:
            for stream in participant["streams"]:
                if stream["bps"]:
                    return stream
    return None


async def test_state_of_a_room_with_a_publisher_and_a_player() -> None:
    watcher = await User.objects.acreate_superuser("watcher", "w@example.com", None)
    client = AsyncClient()
    await client.aforce_login(watcher)
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="watched")
    await bob.request("room.join", room="watched")
    camera = await publish(alice, "watched")
    player = await play(bob, camera.stream["id"])
    await player.wait_for(lambda: len(player.counters) >= 10, 10)

    state = await _state_until(client, lambda s: (_stream(s) or {}).get("players") == 1
                               and (_stream(s) or {}).get("tracks", {}).get("video", {}).get("fps", 0) > 15)
    [room] = state["rooms"]
    assert room["name"] == "watched" and room["status"] == "active"
    assert [p["login"] for p in room["participants"]] == ["alice", "bob"]
    alice_row, bob_row = room["participants"]
    assert alice_row["present"] and alice_row["joined_at"]
    assert bob_row["streams"] == []
    [stream] = alice_row["streams"]
    assert stream["id"] == camera.stream["id"] and stream["kind"] == "camera"
    assert stream["node"] == room["node"] and stream["players"] == 1
    video, audio = stream["tracks"]["video"], stream["tracks"]["audio"]
    # The publisher sends 30 fps (tests/media_tracks.py); a window of a second or more.
    assert 20 <= video["fps"] <= 40 and video["bps"] > 10_000 and video["loss"] < 0.05
    assert audio["bps"] > 5_000
    [node] = state["nodes"]
    assert node["node"] == room["node"] and node["rooms"] == 1
    assert node["published"] == 1 and node["legs"] == 1
    assert node["bps_in"] >= video["bps"] and node["bps_out"] > 10_000
    # What the broker holds (earlier tests of this process may have left
    # tasks no worker took; before any, the filesystem broker has no
    # folder), read again beside the page's reading.
    try:
        broker = {"lengths": await sync_to_async(queue_lengths, thread_sensitive=False)(), "error": None}
    except OSError as error:
        broker = {"lengths": None, "error": type(error).__name__}
    assert state["queue"] == broker

    await alice.request("room.leave", room="watched")
    gone = await _state_until(client, lambda s: not any(p["streams"] for r in s["rooms"] for p in r["participants"]))
    assert [p["login"] for r in gone["rooms"] for p in r["participants"]] == ["bob"]
    for closing in (alice, bob):
        await closing.close()
    await camera.close()
    await player.pc.close()
