"""Two `runmedianode` processes on Redis: new rooms go to the less loaded
node; a drained node takes no new room while its meeting goes on, and
`manage.py drainmedianode` says when that meeting has ended."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rooms.live.redis import redis_client
from rooms.live.registry import RedisStreamRegistry
from rooms.media.peer import use_host_address
from rooms.node_drain import status_row
from tests.integration.test_media import assert_frames_flow
from tests.media_clients import play, publish, publisher_offer
from tests.processes import ROOT
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

EXTERNAL = {"MEDIA_NODES": "external"}


@pytest.fixture(autouse=True)
def loopback_media() -> None:
    use_host_address("127.0.0.1")


async def manage_start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def medianodes(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """`manage.py medianodes --json`, by node."""
    process = await manage_start(env, "medianodes", "--json")
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out
    rows = [json.loads(line) for line in out.decode().splitlines()]
    return {row["node"]: row for row in rows}


@pytest.fixture
async def registry(server_env: dict[str, str]) -> AsyncIterator[RedisStreamRegistry]:
    """The servers' node registry, read from the test (as `medianodes` reads it, in a fraction of its start-up)."""
    client = redis_client(server_env["REDIS_URL"])
    yield RedisStreamRegistry(client, server_env["LIVE_STATE_PREFIX"])
    await client.aclose()


async def nodes(registry: RedisStreamRegistry) -> dict[str, dict[str, Any]]:
    return {status.node: status_row(status) for status in await registry.nodes_status()}


async def wait_for_nodes(
    registry: RedisStreamRegistry, predicate: Any, timeout: float = 15
) -> dict[str, dict[str, Any]]:
    """Poll the registry (nothing signals a heartbeat) until ``predicate`` holds."""
    async with asyncio.timeout(timeout):
        while True:
            found = await nodes(registry)
            if predicate(found):
                return found
            await asyncio.sleep(0.1)


async def offer_only_publish(client: SocketClient, room: str, sdp: str) -> str:
    """A publish whose answer is never applied: enough to place the room."""
    await client.request("room.join", room=room)
    answer = await client.request("stream.publish", room=room, kind="camera", sdp=sdp, timeout=10)
    assert answer["type"] == "stream.answer", answer
    return str(answer["stream"]["id"])


async def test_rooms_spread_and_a_drained_node_keeps_its_meeting_until_it_ends(  # type: ignore[no-untyped-def]
    start_server, server_env, registry
) -> None:
    env = {**server_env, **EXTERNAL}
    for name in ("node-1", "node-2"):
        start_server("medianode", name, env=EXTERNAL)
    web = start_server("daphne", "web", env=EXTERNAL)
    await wait_for_nodes(registry, lambda found: len(found) == 2 and all(row["alive"] for row in found.values()))

    # A meeting: a publisher and a player.
    alice = await SocketClient.connected(web.ws_url, "alice")
    bob = await SocketClient.connected(web.ws_url, "bob")
    await alice.request("room.join", room="meeting")
    await bob.request("room.join", room="meeting")
    camera = await publish(alice, "meeting")
    player = await play(bob, camera.stream["id"])
    await assert_frames_flow(player, seconds=1.0)
    found = await wait_for_nodes(registry, lambda found: any(row["played"] == 1 for row in found.values()))
    [busy] = [node for node, row in found.items() if row["rooms"] == ["meeting"]]
    [idle] = [node for node in found if node != busy]
    assert (found[busy]["published"], found[busy]["played"]) == (1, 1)
    assert found[busy]["score"] > found[idle]["score"]

    # The next room goes to the less loaded node.
    publisher, offer = await publisher_offer()
    carol = await SocketClient.connected(web.ws_url, "carol")
    await offer_only_publish(carol, "second", offer)
    assert (await nodes(registry))[idle]["rooms"] == ["second"]

    # Drain the meeting's node: the command lists its room and waits.
    drain = await manage_start(env, "drainmedianode", busy)
    assert drain.stdout is not None
    first = (await asyncio.wait_for(drain.stdout.readline(), 60)).decode()
    assert first == f"node {busy} is draining: new rooms go to other nodes; 1 room on it: meeting\n"
    # Four new rooms: by load alone the meeting's node would have taken some
    # (each placed room counts on its node at once); draining, it takes none.
    dave = await SocketClient.connected(web.ws_url, "dave")
    for index in range(4):
        await offer_only_publish(dave, f"after-{index}", offer)
    found = await medianodes(env)
    assert found[busy]["draining"] and found[busy]["rooms"] == ["meeting"]
    assert found[idle]["rooms"] == ["after-0", "after-1", "after-2", "after-3", "second"]
    # The meeting goes on, its frames still advancing.
    before = player.counters[-1][1]
    await assert_frames_flow(player, seconds=1.0)
    assert player.counters[-1][1] > before
    assert drain.returncode is None

    # The meeting ends: the command says so, and that the node may restart.
    await alice.request("room.leave", room="meeting")
    await bob.request("room.leave", room="meeting")
    out, _ = await asyncio.wait_for(drain.communicate(), 30)
    assert out.decode().splitlines() == [
        "room meeting ended (0 left)", f"node {busy} has no rooms left: it can be restarted",
    ]
    assert drain.returncode == 0
    assert (await nodes(registry))[busy]["rooms"] == []

    for client in (alice, bob, carol, dave):
        await client.close()
    await camera.close()
    await player.pc.close()
    await publisher.pc.close()
