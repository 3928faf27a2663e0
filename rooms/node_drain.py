"""The operator's view of the media nodes: list them, find one by name,
drain one and wait until its last room has ended.

A draining node takes no new room; each room already pinned to it stays
until it ends (its last participant leaves, or its idle timeout passes),
so the node can then be restarted without cutting a meeting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings

from rooms.live.context import process_context
from rooms.live.registry import NodeStatus
from rooms.media.timing import now_ms

# Rooms end when a web process releases them: nothing signals the drain
# command, so it looks this often.
DRAIN_POLL_S = 0.2


class NodeNotFound(Exception):
    pass


async def nodes_status() -> list[NodeStatus]:
    return await process_context().stream_registry.nodes_status()


def node_alive(status: NodeStatus) -> bool:
    return status.alive(alive_after_ms=now_ms() - settings.PRESENCE_TTL_MS)


def node_find(statuses: list[NodeStatus], name: str) -> NodeStatus:
    """The node named by its channel, a unique part of it, or its ``host:pid``."""
    exact = [status for status in statuses if status.node == name or _host_pid(status) == name]
    matches = exact or [status for status in statuses if name in status.node]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(status.node for status in statuses) or "none"
    if not matches:
        raise NodeNotFound(f"no media node {name!r} is registered (registered: {known})")
    raise NodeNotFound(f"{name!r} names {len(matches)} media nodes: {', '.join(s.node for s in matches)}")


def _host_pid(status: NodeStatus) -> str:
    return f"{status.load.host}:{status.load.pid}" if status.load is not None and status.load.host else ""


async def node_drain_set(node: str, *, draining: bool) -> None:
    if not await process_context().stream_registry.node_drain(node, draining=draining):
        raise NodeNotFound(f"media node {node!r} is not registered (any more)")


DrainOutcome = Literal["empty", "dead", "timeout"]


@dataclass(frozen=True)
class DrainProgress:
    room_ended: str
    left: frozenset[str]


async def node_drain_wait(
    node: str, *, rooms: frozenset[str], on_progress: Callable[[DrainProgress], Any], timeout_s: float = 0,
) -> DrainOutcome:
    """Wait until no room is pinned to ``node`` (``empty``), it stops
    heartbeating (``dead``), or ``timeout_s`` passed (0: no limit)."""
    deadline = time.monotonic() + timeout_s if timeout_s else None
    left = rooms
    while True:
        status = next((status for status in await nodes_status() if status.node == node), None)
        if status is None or not node_alive(status):
            return "dead"
        for room in sorted(left - status.rooms):
            left = left - {room}
            on_progress(DrainProgress(room, left))
        # A room placed just before the flag was set counts too.
        left = left | status.rooms
        if not status.rooms:
            return "empty"
        if deadline is not None and time.monotonic() >= deadline:
            return "timeout"
        await asyncio.sleep(DRAIN_POLL_S)


def status_row(status: NodeStatus) -> dict[str, Any]:
    """One node as ``medianodes --json`` prints it."""
    load = status.load
    return {
        "node": status.node,
        "host": load.host if load else "",
        "pid": load.pid if load else 0,
        "alive": node_alive(status),
        "draining": status.draining,
        "heartbeat_age_ms": max(0, now_ms() - status.beat_ms),
        "published": load.published if load else 0,
        "played": load.played if load else 0,
        "cpu": load.cpu if load else 0.0,
        "rooms": sorted(status.rooms),
        "streams": status.streams,
        "score": round(status.score, 2),
    }
