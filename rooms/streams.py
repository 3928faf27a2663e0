"""Stream actions: publish, play, unpublish, stop, mute.

The web side checks who may do what and keeps the stream registry; the
media node of the room does the WebRTC work and answers the client itself.
"""

from __future__ import annotations

import logging
import random
import uuid
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from rooms import events, history
from rooms.database import db_call
from rooms.live.context import process_context
from rooms.live.registry import StreamRecord
from rooms.media_host import local_media_node
from rooms.server_messages import Muted, RoomMuted, RoomUnpublished, Stream, StreamKind, StreamRef, StreamStatus
from rooms.session import ServiceError, Session
from rooms.timing import now_ms

logger = logging.getLogger(__name__)


def _layer() -> Any:
    layer = get_channel_layer()
    assert layer is not None
    return layer


async def stream_publish(
    *, session: Session, room: str, kind: StreamKind, record: bool, sdp: str, request_id: str | None
) -> StreamStatus | None:
    if room not in session.rooms:
        raise ServiceError("not_in_room", f"not in room {room!r}")
    registry = process_context().stream_registry
    node = await _node_for_room(room)
    if node is None:
        return StreamStatus.refused(request_id, None, "node_unavailable")
    stream = Stream(
        id=uuid.uuid4().hex[:16], participant=session.username, kind=kind, audio="m=audio" in sdp,
        video="m=video" in sdp,
    )
    payload = stream.model_dump(mode="json")
    record_ = StreamRecord(
        stream_id=stream.id, room=room, participant=session.username, kind=kind, node=node,
        publisher_channel=session.info.channel, payload=payload,
    )
    if not await registry.stream_add(record_):
        return StreamStatus.refused(request_id, None, "limit")
    await _layer().send(
        node,
        {"type": "media.publish", "stream": payload, "room": room, "sdp": sdp,
         "record": record or session.rooms[room].record,
         "room_id": session.rooms[room].room_id, "session": session.sid,
         "reply_to": session.info.channel, "request_id": request_id},
    )
    return None  # the node answers with stream.answer


async def _node_for_room(room: str) -> str | None:
    """The room's media node: the one it is pinned to while that one lives."""
    registry = process_context().stream_registry
    alive_after = now_ms() - settings.PRESENCE_TTL_MS
    if settings.MEDIA_NODES == "embedded":
        candidate = (await local_media_node()).channel
    else:
        alive = await registry.nodes_alive(alive_after_ms=alive_after)
        if not alive:
            return None
        candidate = random.choice(alive)
    return await registry.room_node(room, candidate, alive_after_ms=alive_after)


async def stream_play(*, session: Session, stream: str, sdp: str, request_id: str | None) -> StreamStatus | None:
    record = await process_context().stream_registry.stream_get(stream)
    if record is None:
        return StreamStatus.refused(request_id, stream, "unknown_stream")
    if record.room not in session.rooms:
        raise ServiceError("not_in_room", f"not in room {record.room!r}")
    await _layer().send(
        record.node,
        {"type": "media.play", "stream": record.payload, "sdp": sdp, "reply_to": session.info.channel,
         "request_id": request_id},
    )
    return None


async def stream_stop(*, session: Session, stream: str, request_id: str | None) -> StreamStatus:
    record = await process_context().stream_registry.stream_get(stream)
    if record is None:
        raise ServiceError("unknown_stream", f"no stream {stream!r}")
    await _layer().send(record.node, {"type": "media.stop", "stream": stream, "player": session.info.channel})
    return StreamStatus(re=request_id, stream=stream, status="STOPPED")


async def _own_stream(session: Session, stream: str) -> StreamRecord:
    record = await process_context().stream_registry.stream_get(stream)
    if record is None:
        raise ServiceError("unknown_stream", f"no stream {stream!r}")
    if record.participant != session.username or record.room not in session.rooms:
        raise ServiceError("forbidden", "only the publisher may change a stream")
    return record


async def stream_unpublish(*, session: Session, stream: str, request_id: str | None) -> StreamStatus:
    record = await _own_stream(session, stream)
    await stream_end(record)
    return StreamStatus(re=request_id, stream=stream, status="UNPUBLISHED")


async def stream_end(record: StreamRecord, *, publisher_info: str | None = None) -> None:
    """Remove a stream: its node closes it, its players and room are told.

    With ``publisher_info`` the publisher hears ``FAILED`` with that reason
    (its node went away) rather than having asked for it.
    """
    if await process_context().stream_registry.stream_remove(record.stream_id) is None:
        return  # someone else ended it
    await _layer().send(record.node, {"type": "media.unpublish", "stream": record.stream_id})
    await db_call(history.stream_record_end)(stream_id=record.stream_id)
    if publisher_info is not None:
        await events.client_message_send(
            record.publisher_channel, StreamStatus.failed(record.stream_id, publisher_info)
        )
    seq = await process_context().live_state.room_event_seq(record.room)
    await events.room_event_send(
        record.room,
        RoomUnpublished(room=record.room, stream=StreamRef(id=record.stream_id, participant=record.participant)),
        seq=seq,
    )


async def streams_end_for(*, room: str, participant: str, channel: str) -> None:
    """The participant left the room: its streams end, and so do its plays."""
    records = await process_context().stream_registry.room_streams(room)
    for record in records:
        if record.participant == participant:
            await stream_end(record)
    playable: dict[str, list[str]] = {}
    for record in records:
        if record.participant != participant:
            playable.setdefault(record.node, []).append(record.stream_id)
    for node, stream_ids in playable.items():
        await _layer().send(node, {"type": "media.stop_player", "player": channel, "streams": stream_ids})


async def stream_mute(
    *, session: Session, stream: str, audio: bool | None, video: bool | None, request_id: str | None
) -> StreamStatus:
    record = await _own_stream(session, stream)
    published = Stream.model_validate(record.payload)
    muted = Muted(
        audio=published.muted.audio if audio is None else audio,
        video=published.muted.video if video is None else video,
    )
    published = published.model_copy(update={"muted": muted})
    payload = published.model_dump(mode="json")
    updated = StreamRecord(
        stream_id=record.stream_id, room=record.room, participant=record.participant, kind=record.kind,
        node=record.node, publisher_channel=record.publisher_channel, payload=payload,
    )
    await process_context().stream_registry.stream_update(updated)
    await _layer().send(record.node, {"type": "media.mute", "stream": stream, "muted": payload["muted"]})
    seq = await process_context().live_state.room_event_seq(record.room)
    await events.room_event_send(record.room, RoomMuted(room=record.room, stream=published), seq=seq)
    return StreamStatus(re=request_id, stream=stream, status="PUBLISHING")


async def room_media_release(room: str) -> None:
    """The room ended: its next life may be pinned to another node."""
    await process_context().stream_registry.room_node_release(room)


async def nodes_sweep() -> None:
    """End the streams of media nodes that stopped heartbeating."""
    from recording.services import recordings_of_dead_nodes_close

    registry = process_context().stream_registry
    current = now_ms()
    dead = await registry.nodes_claim_dead(dead_before_ms=current - settings.PRESENCE_TTL_MS, now_ms=current)
    for node in dead:
        logger.warning("media node %s stopped heartbeating; ending its streams", node)
        for record in await registry.node_streams(node):
            await stream_end(record, publisher_info="node_failed")
        await registry.node_forget(node)
    if dead:
        alive = await registry.nodes_alive(alive_after_ms=current - settings.PRESENCE_TTL_MS)
        await db_call(recordings_of_dead_nodes_close)(set(alive))


async def room_participant_streams(room: str) -> dict[str, list[Stream]]:
    streams: dict[str, list[Stream]] = {}
    for record in await process_context().stream_registry.room_streams(room):
        streams.setdefault(record.participant, []).append(Stream.model_validate(record.payload))
    return streams
