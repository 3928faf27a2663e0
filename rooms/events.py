"""Delivery of server events to connections over the channel layer.

Every process's consumers are reachable by channel name; a room is a group.
Events travel as ``{"type": "room.event", "event": <protocol event>,
"seq": <the room's event count>}`` and the consumer forwards the event as it
is (unless its join already covered ``seq``), so the wire shape is decided
in ``rooms.services`` and ``rooms.protocol`` only.
"""

from __future__ import annotations

import hashlib
from typing import Any

from channels.layers import BaseChannelLayer, get_channel_layer


def room_group(room: str) -> str:
    # Group names are limited to 100 ASCII characters; room names may be 128.
    return "room." + hashlib.sha1(room.encode()).hexdigest()


def _layer() -> BaseChannelLayer:
    layer = get_channel_layer()
    assert layer is not None, "CHANNEL_LAYERS must be configured"
    return layer


async def room_event_send(
    room: str, event: dict[str, Any], *, seq: int, exclude_channel: str | None = None
) -> None:
    """Send ``event`` to every connection in ``room`` except ``exclude_channel``."""
    await _layer().group_send(
        room_group(room), {"type": "room.event", "event": event, "seq": seq, "exclude": exclude_channel}
    )


async def channel_event_send(channel: str, event: dict[str, Any], *, seq: int) -> None:
    await _layer().send(channel, {"type": "room.event", "event": event, "seq": seq, "exclude": None})


async def session_end_send(channel: str, reason: str) -> None:
    """Ask the connection on ``channel`` to tell its client goodbye and close."""
    await _layer().send(channel, {"type": "session.end", "reason": reason})


async def room_group_add(room: str, channel: str) -> None:
    await _layer().group_add(room_group(room), channel)


async def room_group_discard(room: str, channel: str) -> None:
    await _layer().group_discard(room_group(room), channel)
