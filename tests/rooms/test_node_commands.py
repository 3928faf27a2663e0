"""``manage.py medianodes`` and ``drainmedianode`` against the node registry
in real Redis (a fresh prefix), with nodes registered as their hosts
register them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from rooms.live.context import process_context
from rooms.media.messages import LoadReport
from rooms.media.timing import now_ms

NODE_A = "test:asgimedia.node.aaaa1111"
NODE_B = "test:asgimedia.node.bbbb2222"


def registry_run(*steps: str, rooms: dict[str, str] | None = None, beats: dict[str, int] | None = None) -> None:
    """Heartbeat both nodes (A busier), then place ``rooms`` (room -> node
    it must land on) or run registry ``steps`` such as ``release:r1``."""

    async def run() -> None:
        registry = process_context().stream_registry
        try:
            for node, legs in (beats or {NODE_A: 4, NODE_B: 10}).items():
                load = LoadReport(node=node, published=1, played=legs - 1, at_ms=now_ms(), rooms=1, cpu=0.02,
                                  host="media-host", pid=100 + legs)
                await registry.node_heartbeat(node, now_ms(), load)
            for room, expected in (rooms or {}).items():
                assert await registry.room_node_place(room, alive_after_ms=now_ms() - 5000) == expected
            for step in steps:
                action, room = step.split(":")
                assert action == "release"
                await registry.room_node_release(room)
        finally:
            await process_context().close()

    asyncio.run(run())


@pytest.fixture
def nodes(redis_live_state: str) -> Iterator[None]:
    registry_run(rooms={"weekly": NODE_A, "standup": NODE_A})
    yield


def command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_medianodes_lists_load_rooms_and_state(nodes: None) -> None:
    rows = [json.loads(line) for line in command("medianodes", "--json").splitlines()]
    assert [(row["node"], row["alive"], row["draining"], row["rooms"]) for row in rows] == [
        (NODE_A, True, False, ["standup", "weekly"]), (NODE_B, True, False, []),
    ]
    a = rows[0]
    assert (a["host"], a["pid"], a["published"], a["played"], a["cpu"]) == ("media-host", 104, 1, 3, 0.02)
    # 4 legs + 0.02 of a core (4 legs) + one pinned room beyond the one
    # served, weighed as that served room (8 legs).
    assert a["score"] == pytest.approx(16.0)
    table = command("medianodes").splitlines()
    assert table[0].split() == ["NODE", "HOST:PID", "STATE", "LEGS", "CPU", "SCORE", "ROOMS"]
    assert table[1].split() == [NODE_A, "media-host:104", "live", "4", "0.02", "16.0", "2:", "standup,", "weekly"]


def test_drain_without_waiting_then_undo(nodes: None) -> None:
    out = command("drainmedianode", "aaaa1111", "--no-wait")
    assert out == f"node {NODE_A} is draining: new rooms go to other nodes; 2 rooms on it: standup, weekly\n"
    # Busier, but the only one taking rooms.
    registry_run(rooms={"new": NODE_B, "weekly": NODE_A}, beats={NODE_A: 1, NODE_B: 30})
    assert "draining" in command("medianodes").splitlines()[1].split()
    assert command("drainmedianode", "media-host:101", "--undo") == f"node {NODE_A} takes new rooms again\n"
    registry_run(rooms={"newer": NODE_A}, beats={NODE_A: 1, NODE_B: 30})


def test_drain_reports_rooms_ending_or_gives_up_at_its_timeout(nodes: None) -> None:
    with pytest.raises(CommandError, match=r"still has 2 rooms after 0.3 s: standup, weekly \(it stays draining\)"):
        command("drainmedianode", NODE_A, "--timeout", "0.3")
    registry_run("release:weekly", "release:standup")
    out = command("drainmedianode", NODE_A).splitlines()
    assert out == [f"node {NODE_A} is draining: new rooms go to other nodes; 0 rooms on it: none",
                   f"node {NODE_A} has no rooms left: it can be restarted"]


def test_drain_names_what_it_cannot_find(nodes: None) -> None:
    with pytest.raises(CommandError, match="no media node 'cccc' is registered"):
        command("drainmedianode", "cccc")
    with pytest.raises(CommandError, match="names 2 media nodes"):
        command("drainmedianode", "asgimedia")


def test_the_commands_need_the_deployments_redis(settings) -> None:  # type: ignore[no-untyped-def]
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="REDIS_URL"):
        command("medianodes")
    with pytest.raises(CommandError, match="REDIS_URL"):
        command("drainmedianode", "x")
