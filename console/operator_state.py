"""What the live view shows now: open rooms with their participants and
streams, each stream's live rates, the media nodes and their load, and the
Celery queue.

Read, never written: rooms come from the database (the open ones), who is
in them and what they publish from the live state and the stream registry,
the nodes with their pins and CPU from the node registry, the rates from
each node's last heartbeat (``rooms.live.node_traffic``).
The result is plain JSON for ``state.json``.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from conference_site.broker_queue import queue_lengths
from rooms.database import db_call
from rooms.live.context import process_context
from rooms.live.registry import NodeStatus, StreamRecord
from rooms.media.timing import now_ms
from rooms.media.traffic_rates import NodeTraffic, StreamTraffic
from rooms.models import Participant, Room

logger = logging.getLogger(__name__)

# The view lists at most this many open rooms (the newest), and says how many there are.
MAX_ROOMS = 200
# Rooms read from the live state at once: the web process's Redis pool
# serves its participants too.
CONCURRENT_ROOM_READS = 8


@dataclass(frozen=True)
class OpenRoom:
    """An open room as the database has it."""

    name: str
    live_id: str
    status: str
    record: bool
    created_at: datetime.datetime
    # Login -> when its current stay began.
    joined_at: dict[str, datetime.datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class RoomNow:
    """An open room as the live state has it."""

    room: OpenRoom
    status: str | None
    members: list[str]
    profiles: dict[str, str]
    streams: list[StreamRecord]


def open_rooms(limit: int = MAX_ROOMS) -> tuple[list[OpenRoom], int]:
    """The newest ``limit`` rooms not finalized, and how many there are."""
    rooms = Room.objects.exclude(status=Room.Status.FINALIZED)
    total = rooms.count()
    rows = list(rooms.order_by("-created_at", "-pk").values_list("pk", "name", "live_id", "status", "record",
                                                                 "created_at")[:limit])
    joined: dict[int, dict[str, datetime.datetime]] = {pk: {} for pk, *_ in rows}
    present = Participant.objects.filter(room_id__in=joined, left_at__isnull=True).order_by("joined_at")
    for room_id, login, joined_at in present.values_list("room_id", "login", "joined_at"):
        joined[room_id][login] = joined_at
    listed = [
        OpenRoom(name=name, live_id=live_id, status=status, record=record, created_at=created_at,
                 joined_at=joined[pk])
        for pk, name, live_id, status, record, created_at in rows
    ]
    return listed, total


async def _room_now(room: OpenRoom, gate: asyncio.Semaphore) -> RoomNow:
    context = process_context()
    state, registry = context.live_state, context.stream_registry
    async with gate:
        status, members, profiles, streams = await asyncio.gather(
            state.room_status(room.name), state.room_members(room.name), state.room_profiles(room.name),
            registry.room_streams(room.name),
        )
    return RoomNow(room=room, status=status, members=sorted(members), profiles=profiles, streams=streams)


async def _queue() -> dict[str, Any]:
    try:
        lengths = await asyncio.wait_for(
            sync_to_async(queue_lengths, thread_sensitive=False)(), settings.READYZ_CHECK_TIMEOUT_S + 1
        )
    except Exception as error:
        logger.warning("reading the Celery queue lengths failed: %r", error)
        return {"lengths": None, "error": type(error).__name__}
    return {"lengths": lengths, "error": None}


def _stream_json(record: StreamRecord, traffic: dict[str, NodeTraffic]) -> dict[str, Any]:
    rates: StreamTraffic | None = None
    node_traffic = traffic.get(record.node)
    if node_traffic is not None:
        rates = node_traffic.streams.get(record.stream_id)
    payload = record.payload
    return {
        "id": record.stream_id,
        "kind": record.kind,
        "node": record.node,
        "audio": bool(payload.get("audio")),
        "video": bool(payload.get("video")),
        "muted": payload.get("muted", {"audio": False, "video": False}),
        # None: the node has not measured the stream yet (or wrote no rates).
        "players": None if rates is None else rates.players,
        "bps": None if rates is None else rates.bps,
        "tracks": {} if rates is None else {
            kind: {"bps": track.bps, "fps": track.fps, "loss": track.loss} for kind, track in rates.tracks.items()
        },
    }


def _display_name(profile: str) -> str:
    if not profile:
        return ""
    try:
        return str(json.loads(profile).get("display_name", ""))
    except (ValueError, AttributeError):
        return ""


def _room_json(now: RoomNow, traffic: dict[str, NodeTraffic], pinned: dict[str, str]) -> dict[str, Any]:
    room = now.room
    by_participant: dict[str, list[StreamRecord]] = {}
    for record in sorted(now.streams, key=lambda record: (record.participant, record.kind)):
        by_participant.setdefault(record.participant, []).append(record)
    # Members now, and anyone still publishing (a stream outlives its
    # publisher's leave by the moment it takes to end).
    logins = sorted(set(now.members) | set(by_participant))
    nodes = sorted({record.node for record in now.streams})
    return {
        "name": room.name,
        "live_id": room.live_id,
        # The live state's word (active, idle, finalizing), else the database's.
        "status": now.status or room.status.lower(),
        "record": room.record,
        "created_at": room.created_at.isoformat(),
        # The node it is pinned to (its streams' node while a pin is being made).
        "node": pinned.get(room.name) or (nodes[0] if nodes else None),
        "participants": [
            {
                "login": login,
                "display_name": _display_name(now.profiles.get(login, "")),
                "present": login in now.members,
                "joined_at": room.joined_at[login].isoformat() if login in room.joined_at else None,
                "streams": [_stream_json(record, traffic) for record in by_participant.get(login, [])],
            }
            for login in logins
        ],
    }


def _nodes_json(nodes: Sequence[NodeStatus], traffic: dict[str, NodeTraffic]) -> list[dict[str, Any]]:
    listed = []
    for status in nodes:
        rates, load = traffic.get(status.node), status.load
        listed.append({
            "node": status.node,
            # Where to find its process, from its heartbeat ("" and 0 before the first).
            "host": "" if load is None else load.host,
            "pid": 0 if load is None else load.pid,
            "draining": status.draining,
            # The rooms pinned to it.
            "rooms": len(status.rooms),
            # CPU seconds per second its process used, from its heartbeat (None before the first).
            "cpu": None if load is None else load.cpu,
            # None: the node wrote no rates (yet).
            "published": None if rates is None else rates.published,
            "legs": None if rates is None else rates.legs,
            "bps_in": None if rates is None else rates.bps_in,
            "bps_out": None if rates is None else rates.bps_out,
            "at_ms": None if rates is None else rates.at_ms,
        })
    return listed


async def operator_state(*, max_rooms: int = MAX_ROOMS) -> dict[str, Any]:
    """Everything ``state.json`` answers, read now."""
    context = process_context()
    queue_read = asyncio.ensure_future(_queue())
    try:
        rooms, total = await db_call(open_rooms)(max_rooms)
        gate = asyncio.Semaphore(CONCURRENT_ROOM_READS)
        live = await asyncio.gather(*(_room_now(room, gate) for room in rooms))
        alive_after = now_ms() - settings.PRESENCE_TTL_MS
        nodes = [status for status in await context.stream_registry.nodes_status()
                 if status.alive(alive_after_ms=alive_after)]
        traffic = await context.node_traffic.node_traffic_get([status.node for status in nodes])
        pinned = {room: status.node for status in nodes for room in status.rooms}
    finally:
        queue = await queue_read
    return {
        "at_ms": now_ms(),
        "rooms_open": total,
        "rooms": [_room_json(now, traffic, pinned) for now in live],
        "nodes": _nodes_json(nodes, traffic),
        "queue": queue,
    }
