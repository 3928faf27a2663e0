"""Delivery of server events to connections over the channel layer.

Every process's consumers are reachable by channel name; a room is a group.
An event is serialized here, once however many connections get it, and
travels as ``{"type": "room.event", "event": <its frame>, "text": <the
frame's JSON text>, "seq": <the room's event count>}``; the consumer sends
the text as it is (unless its join already covered ``seq``), never encoding
it again (``rooms.frames``); a passing event that no ``room.state`` reflects
(``room.speakers``) travels with ``seq`` null and reaches every member of
the moment. Frames for one connection (a stream's status)
travel as ``{"type": "client.send", "frame": <the frame>}``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from rooms.channel_layers import BoundedPubSubChannelLayer, GroupPublication
from rooms.frames import frame_text
from rooms.server_messages import RoomEvent, ServerMessage


def room_group(room: str) -> str:
    # Group names are limited to 100 ASCII characters; room names may be 128.
    return "room." + hashlib.sha1(room.encode()).hexdigest()


def _layer() -> BaseChannelLayer:
    layer = get_channel_layer()
    assert layer is not None, "CHANNEL_LAYERS must be configured"
    return layer


def room_event_message(event: RoomEvent, *, seq: int | None, exclude: str | None = None) -> dict[str, Any]:
    """The channel message of ``event``: its frame, and that frame's text encoded once."""
    frame = event.frame()
    return {"type": "room.event", "event": frame, "text": frame_text(frame), "seq": seq, "exclude": exclude}


async def room_event_send(room: str, event: RoomEvent, *, seq: int, exclude_channel: str | None = None) -> None:
    """Send ``event`` to every connection in ``room`` except ``exclude_channel``."""
    await _layer().group_send(room_group(room), room_event_message(event, seq=seq, exclude=exclude_channel))


def room_event_publication(room: str, event: RoomEvent) -> GroupPublication | None:
    """``event`` to ``room`` as a script on the live state's Redis publishes
    it, with the room's count it takes as ``seq`` (``rooms.live.chat_send``);
    None when the channel layer is not on that Redis (or not pub/sub)."""
    layer = _layer()
    if not isinstance(layer, BoundedPubSubChannelLayer):
        return None
    message = room_event_message(event, seq=None)
    del message["seq"]
    publication = layer.group_publication(room_group(room), message, last="seq")
    if publication is None or publication.address != settings.REDIS_URL:
        return None
    return publication


async def room_passing_event_send(room: str, event: RoomEvent) -> None:
    """Send ``event`` to every connection in ``room``: news of the moment
    that changes no room state, so it counts no event of the room."""
    await _layer().group_send(room_group(room), room_event_message(event, seq=None))


async def channels_event_send(channels: Iterable[str], event: RoomEvent, *, seq: int) -> None:
    """Send ``event`` to each of ``channels`` (members of the event's room)."""
    message = room_event_message(event, seq=seq)
    layer = _layer()
    for channel in channels:
        await layer.send(channel, message)


async def client_message_send(channel: str, message: ServerMessage) -> None:
    """Send ``message`` to the one connection on ``channel``."""
    await _layer().send(channel, {"type": "client.send", "frame": message.frame()})


async def session_end_send(channel: str, reason: str) -> None:
    """Ask the connection on ``channel`` to tell its client goodbye and close."""
    await _layer().send(channel, {"type": "session.end", "reason": reason})


async def room_group_add(room: str, channel: str) -> None:
    await _layer().group_add(room_group(room), channel)


async def room_group_discard(room: str, channel: str) -> None:
    await _layer().group_discard(room_group(room), channel)
