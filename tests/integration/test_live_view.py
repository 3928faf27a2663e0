"""The live view against real processes: a daphne, a separate media node,
aiortc publisher and players; state.json read over HTTP as a logged-in
operator shows the stream's live rates and the node's legs."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import time
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest

from rooms.media.peer import use_host_address
from tests.media_clients import play, publish
from tests.processes import manage
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

PASSWORD = "a-long-live-view-password"
CREATE_OPERATOR = """
from django.contrib.auth.models import Permission, User
user = User.objects.create_user({name!r}, password={password!r}, is_staff=True)
user.user_permissions.add(Permission.objects.get(codename="view_live_rooms", content_type__app_label="console"))
"""


class Operator:
    """A browser-like HTTP client with the admin's session cookie."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def log_in(self, username: str) -> None:
        form = self.opener.open(f"{self.base_url}/admin/login/", timeout=10).read().decode()
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert match, form
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": match[1], "username": username, "password": PASSWORD,
                                       "next": "/admin/"}).encode()
        landed = self.opener.open(f"{self.base_url}/admin/login/", data, timeout=10)
        assert landed.url.endswith("/admin/"), landed.url

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with self.opener.open(f"{self.base_url}{path}", timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    async def state(self) -> dict[str, Any]:
        # In a thread: the test's aiortc peers run on this loop.
        status, body = await asyncio.to_thread(self.get, "/admin/live/state.json")
        assert status == 200, body
        state: dict[str, Any] = json.loads(body)
        return state

    async def state_until(self, ready: Any, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = await self.state()
            if ready(state) or time.monotonic() > deadline:
                return state
            await asyncio.sleep(0.3)


def _stream(state: dict[str, Any]) -> dict[str, Any]:
    for room in state["rooms"]:
        for participant in room["participants"]:
            for stream in participant["streams"]:
                return dict(stream)
    return {}


def _node(state: dict[str, Any]) -> dict[str, Any]:
    return dict(state["nodes"][0]) if state["nodes"] else {}


async def test_state_json_shows_live_rates_and_legs(start_server, server_env) -> None:  # type: ignore[no-untyped-def]
    use_host_address("127.0.0.1")
    node = start_server("medianode", "node", env={"MEDIA_NODES": "external"})
    node.wait_for_log("media node ready")
    web = start_server("daphne", "web", env={"MEDIA_NODES": "external"})
    name = f"live-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(manage, server_env, "shell", "-c", CREATE_OPERATOR.format(name=name, password=PASSWORD))
    operator = Operator(web.http_url)
    await asyncio.to_thread(operator.log_in, name)
    page_status, page = await asyncio.to_thread(operator.get, "/admin/live/")
    assert page_status == 200 and b"console/live.js" in page

    alice = await SocketClient.connected(web.ws_url, "alice")
    bob = await SocketClient.connected(web.ws_url, "bob")
    cid = await SocketClient.connected(web.ws_url, "cid")
    for client in (alice, bob, cid):
        await client.request("room.join", room="live")
    camera = await publish(alice, "live")
    first = await play(bob, camera.stream["id"])
    await first.wait_for(lambda: len(first.counters) >= 10, 15)

    def one_leg_live(state: dict[str, Any]) -> bool:
        video = _stream(state).get("tracks", {}).get("video", {})
        # A leg's first window only starts its count: its rate comes with the next.
        return _node(state).get("legs") == 1 and video.get("fps", 0) > 20 and _node(state).get("bps_out", 0) > 0
    state = await operator.state_until(one_leg_live)
    [room] = [room for room in state["rooms"] if room["name"] == "live"]
    assert [participant["login"] for participant in room["participants"]] == ["alice", "bob", "cid"]
    stream = _stream(state)
    assert stream["id"] == camera.stream["id"] and stream["players"] == 1
    video, audio = stream["tracks"]["video"], stream["tracks"]["audio"]
    # The publisher sends 30 fps; the node measures over windows of a second or more.
    assert 24 <= video["fps"] <= 36, video
    assert video["bps"] > 20_000 and video["loss"] < 0.05, video
    assert audio["bps"] > 5_000 and audio["fps"] > 40, audio
    [node_row] = state["nodes"]
    assert node_row["node"] == room["node"] == stream["node"]
    assert f"media node ready: {node_row['node']}" in node.log()  # the separate node, not daphne
    assert (node_row["rooms"], node_row["published"], node_row["legs"]) == (1, 1, 1)
    assert node_row["bps_in"] >= video["bps"] + audio["bps"] - 1 and node_row["bps_out"] > 20_000
    assert node_row["cpu"] is not None and 0 < node_row["cpu"] < 2
    # REDIS_URL: the broker is Redis, asked by the view itself.
    assert state["queue"] == {"lengths": {"celery": 0}, "error": None}

    # A second player: one more leg, and the figures move on.
    second = await play(cid, camera.stream["id"])
    await second.wait_for(lambda: len(second.counters) >= 10, 15)
    later = await operator.state_until(lambda s: _node(s).get("legs") == 2 and _stream(s).get("players") == 2
                                       and _node(s).get("bps_out", 0) > 1.5 * node_row["bps_out"])
    assert (_node(later)["legs"], _stream(later)["players"]) == (2, 2)
    assert later["at_ms"] > state["at_ms"] and _node(later)["at_ms"] > node_row["at_ms"]
    # Two players: about twice what went out to one.
    assert _node(later)["bps_out"] > 1.5 * node_row["bps_out"]

    await alice.request("room.leave", room="live")
    ended = await operator.state_until(lambda s: not _stream(s) and _node(s).get("legs") == 0)
    assert not _stream(ended) and (_node(ended)["published"], _node(ended)["legs"]) == (0, 0)
    for client in (alice, bob, cid):
        await client.close()
    for peer in (camera, first, second):
        await peer.pc.close()
