"""What the live view shows now: open rooms with their participants and
streams, each stream's live rates, the media nodes and their load, and the
Celery queue.

Read, never written: rooms come from the database (the open ones), who is
in them and what they publish from the live state and the stream registry,
the rates from each node's last heartbeat (``rooms.live.node_traffic``).
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
from rooms.live.registry import StreamRecord
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


def _room_json(now: RoomNow, traffic: dict[str, NodeTraffic]) -> dict[str, Any]:
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
        "node": nodes[0] if nodes else None,
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


def _nodes_json(alive: Sequence[str], traffic: dict[str, NodeTraffic], rooms: list[RoomNow]) -> list[dict[str, Any]]:
    rooms_on: dict[str, set[str]] = {}
    for now in rooms:
        for record in now.streams:
            rooms_on.setdefault(record.node, set()).add(now.room.name)
    listed = []
    for node in sorted(alive):
        load = traffic.get(node)
        listed.append({
            "node": node,
            "rooms": len(rooms_on.get(node, ())),
            # None: the node wrote no rates (yet).
            "published": None if load is None else load.published,
            "legs": None if load is None else load.legs,
            "bps_in": None if load is None else load.bps_in,
            "bps_out": None if load is None else load.bps_out,
            "cpu": None if load is None else load.cpu,
            "at_ms": None if load is None else load.at_ms,
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
        alive = await context.stream_registry.nodes_alive(alive_after_ms=now_ms() - settings.PRESENCE_TTL_MS)
        traffic = await context.node_traffic.node_traffic_get(alive)
    finally:
        queue = await queue_read
    return {
        "at_ms": now_ms(),
        "rooms_open": total,
        "rooms": [_room_json(now, traffic) for now in live],
        "nodes": _nodes_json(alive, traffic, live),
        "queue": queue,
    }
