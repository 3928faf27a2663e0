"""Stream actions: publish, play, unpublish, stop, mute; and what the media
nodes report about them.

The web side checks who may do what, keeps the stream registry, and sends
the room's media node commands (``rooms.media.messages``). The node reports
back to the requesting connection, whose consumer hands each report to
``node_report``: this module alone turns them into stream history rows,
client messages and room events, and ends streams.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from pydantic import MISSING

from ops import metrics
from rooms import events, permissions
from rooms.live.context import process_context
from rooms.live.registry import StreamRecord
from rooms.media import messages
from rooms.media.timing import now_ms
from rooms.media_host import local_media_node
from rooms.server_messages import (
    Muted,
    RoomMuted,
    RoomPublished,
    RoomSpeakers,
    RoomUnpublished,
    Speaker,
    Stream,
    StreamAnswer,
    StreamKind,
    StreamPaused,
    StreamRecordStatus,
    StreamRef,
    StreamResumed,
    StreamStatus,
)
from rooms.session import MediaRequest, ServiceError, Session
from rooms.signals import media_nodes_dead

logger = logging.getLogger(__name__)


def _layer() -> Any:
    layer = get_channel_layer()
    assert layer is not None
    return layer


async def _command_send(node: str, command: messages.NodeMessage) -> None:
    await _layer().send(node, messages.message_encode(command))


def _node_request_id() -> str:
    return uuid.uuid4().hex[:16]


async def stream_publish(
    *, session: Session, room: str, kind: StreamKind, record: bool, sdp: str, request_id: str | None
) -> StreamStatus | None:
    if room not in session.rooms:
        raise ServiceError("not_in_room", f"not in room {room!r}")
    permissions.publish_check(session, kind, sdp)
    if record:
        permissions.record_check(session)
    if session.peer_connections() >= settings.PEER_CONNECTIONS_PER_SESSION:
        metrics.RATE_LIMIT_REFUSALS.labels("peer_connections_per_session").inc()
        return StreamStatus.refused(request_id, None, "limit")
    registry = process_context().stream_registry
    node = await _node_for_room(room)
    if node is None:
        return StreamStatus.refused(request_id, None, "node_unavailable")
    stream = Stream(
        id=uuid.uuid4().hex[:16], participant=session.username, kind=kind, audio="m=audio" in sdp,
        video="m=video" in sdp,
    )
    record_ = StreamRecord(
        stream_id=stream.id, room=room, participant=session.username, kind=kind, node=node,
        publisher_channel=session.info.channel, payload=stream.model_dump(mode="json"),
    )
    if not await registry.stream_add(record_):
        return StreamStatus.refused(request_id, None, "limit")
    session.publishes[stream.id] = room
    membership = session.rooms[room]
    recorded = record or membership.record
    node_request = _node_request_id()
    session.media_requests[node_request] = MediaRequest(
        client_request_id=request_id, room=room, room_id=membership.room_id, stream=stream, record=recorded
    )
    await _command_send(
        node,
        messages.PublishCommand(
            request_id=node_request, reply_to=session.info.channel, room=room, room_id=membership.room_id,
            stream=stream.id, participant=session.username, kind=kind, sdp=sdp, record=recorded,
        ),
    )
    return None  # the node's answer becomes stream.answer


async def _node_for_room(room: str) -> str | None:
    """The room's media node: the one it is pinned to while that one lives,
    else the least loaded live node that is not draining."""
    if settings.MEDIA_NODES == "embedded":
        # This process's own node heartbeats from now on: it is a candidate
        # (with Redis, beside the nodes other web processes started).
        await local_media_node()
    registry = process_context().stream_registry
    return await registry.room_node_place(room, alive_after_ms=now_ms() - settings.PRESENCE_TTL_MS)


async def stream_play(*, session: Session, stream: str, sdp: str, request_id: str | None) -> StreamStatus | None:
    permissions.subscribe_check(session)
    record = await process_context().stream_registry.stream_get(stream)
    if record is None:
        return StreamStatus.refused(request_id, stream, "unknown_stream")
    membership = session.rooms.get(record.room)
    if membership is None:
        raise ServiceError("not_in_room", f"not in room {record.room!r}")
    return await _play_send(session, record, sdp=sdp, request_id=request_id, room_id=membership.room_id)


async def stream_watch(
    *, session: Session, room: str, stream: str, sdp: str, request_id: str | None
) -> StreamStatus | None:
    """Play a stream of ``room`` without being in it (a WHEP player): its
    token's room grant admits it, as it would admit a join."""
    permissions.join_check(session, room)
    permissions.subscribe_check(session)
    record = await process_context().stream_registry.stream_get(stream)
    if record is None or record.room != room:
        return StreamStatus.refused(request_id, stream, "unknown_stream")
    return await _play_send(session, record, sdp=sdp, request_id=request_id, room_id="")


async def _play_send(
    session: Session, record: StreamRecord, *, sdp: str, request_id: str | None, room_id: str
) -> StreamStatus | None:
    stream = record.stream_id
    # Playing a stream again replaces the play: no new peer connection.
    if stream not in session.plays and session.peer_connections() >= settings.PEER_CONNECTIONS_PER_SESSION:
        metrics.RATE_LIMIT_REFUSALS.labels("peer_connections_per_session").inc()
        return StreamStatus.refused(request_id, stream, "limit")
    session.plays[stream] = record.room
    published = Stream.model_validate(record.payload)
    node_request = _node_request_id()
    session.media_requests[node_request] = MediaRequest(
        client_request_id=request_id, room=record.room, room_id=room_id, stream=published
    )
    await _command_send(
        record.node,
        messages.PlayCommand(
            request_id=node_request, reply_to=session.info.channel, room=record.room, stream=stream, sdp=sdp,
            muted=messages.Muted(audio=published.muted.audio, video=published.muted.video),
        ),
    )
    return None


async def stream_stop(*, session: Session, stream: str, request_id: str | None) -> StreamStatus:
    record = await process_context().stream_registry.stream_get(stream)
    if record is None:
        raise ServiceError("unknown_stream", f"no stream {stream!r}")
    session.plays.pop(stream, None)
    await _command_send(
        record.node, messages.StopCommand(room=record.room, stream=stream, player=session.info.channel)
    )
    return StreamStatus(re=request_id, stream=stream, status="STOPPED")


async def play_stop(*, room: str, stream: str, player: str) -> None:
    """Stop ``player``'s play of a stream of ``room``, from any process."""
    record = await process_context().stream_registry.stream_get(stream)
    if record is not None and record.room == room:
        await _command_send(record.node, messages.StopCommand(room=room, stream=stream, player=player))


async def _own_stream(session: Session, stream: str) -> StreamRecord:
    record = await process_context().stream_registry.stream_get(stream)
    if record is None:
        raise ServiceError("unknown_stream", f"no stream {stream!r}")
    if record.participant != session.username or record.room not in session.rooms:
        raise ServiceError("forbidden", "only the publisher may change a stream")
    return record


async def stream_unpublish(*, session: Session, stream: str, request_id: str | None) -> StreamStatus:
    record = await _own_stream(session, stream)
    session.publishes_starting.pop(stream, None)
    session.publishes.pop(stream, None)
    await stream_end(record)
    return StreamStatus(re=request_id, stream=stream, status="UNPUBLISHED")


async def stream_end(record: StreamRecord, *, publisher_info: str | None = None) -> None:
    """Remove a stream: its node closes it, its players and room are told.

    With ``publisher_info`` the publisher hears ``FAILED`` with that reason
    (its connection or its node failed) rather than having asked for it.
    """
    if await process_context().stream_registry.stream_remove(record.stream_id) is None:
        return  # someone else ended it
    await process_context().history_outbox.write("stream_end", stream_id=record.stream_id, at_ms=now_ms())
    await _command_send(record.node, messages.UnpublishCommand(room=record.room, stream=record.stream_id))
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
        await _command_send(node, messages.StopPlayerCommand(room=room, player=channel, streams=stream_ids))


async def stream_mute(
    *, session: Session, stream: str, audio: bool | None, video: bool | None, request_id: str | None
) -> StreamStatus:
    """The publisher mutes or unmutes its own stream."""
    record = await _own_stream(session, stream)
    await stream_mute_apply(record, audio=audio, video=video)
    return StreamStatus(re=request_id, stream=stream, status="PUBLISHING")


async def stream_room_of_other(session: Session, stream: str) -> str | None:
    """The room of another participant's stream, None if it is the session's own or unknown."""
    record = await process_context().stream_registry.stream_get(stream)
    if record is None or (record.participant == session.username and record.room in session.rooms):
        return None
    return record.room


async def stream_mute_apply(
    record: StreamRecord, *, audio: bool | None, video: bool | None, by: str | MISSING = MISSING
) -> None:
    """Mute or unmute a stream's tracks: its node stops (or resumes) forwarding
    them and the room is told, with the moderator ``by`` when it was one."""
    published = Stream.model_validate(record.payload)
    muted = Muted(
        audio=published.muted.audio if audio is None else audio,
        video=published.muted.video if video is None else video,
    )
    published = published.model_copy(update={"muted": muted})
    await process_context().stream_registry.stream_update(
        dataclasses.replace(record, payload=published.model_dump(mode="json"))
    )
    node_muted = messages.Muted(audio=muted.audio, video=muted.video)
    await _command_send(record.node, messages.MuteCommand(room=record.room, stream=record.stream_id, muted=node_muted))
    await process_context().history_outbox.write(
        "stream_mute", stream_id=record.stream_id, mute_id=uuid.uuid4().hex, audio=muted.audio, video=muted.video,
        by=by if isinstance(by, str) else "", at_ms=now_ms(),
    )
    seq = await process_context().live_state.room_event_seq(record.room)
    await events.room_event_send(record.room, RoomMuted(room=record.room, stream=published, by=by), seq=seq)


# --- what media nodes report ---------------------------------------------------------

# Reasons a node gives that a client has no word for: the node could not
# read the command (a web process and a node of different versions).
_CLIENT_INFO = {"bad_command": "node_unavailable", "version_not_supported": "node_unavailable"}


def _client_info(reason: messages.FailureReason) -> str:
    return _CLIENT_INFO.get(reason, reason)


async def node_report(
    *, session: Session, report: messages.AnyReport
) -> StreamAnswer | StreamStatus | StreamRecordStatus | StreamPaused | StreamResumed | None:
    """A media node's report about this connection's publish or play: its
    side effects, and the message for the client, if any."""
    match report:
        case messages.AnswerReport():
            request = session.media_requests.pop(report.request_id, None)
            if request is None:
                return None
            if report.player is None:
                session.publishes_starting[report.stream] = request
            return StreamAnswer(re=request.client_request_id, stream=request.stream, sdp=report.sdp)
        case messages.PublishingReport():
            return await _stream_publishing(session, report)
        case messages.PlayingReport():
            return StreamStatus(stream=report.stream, status="PLAYING")
        case messages.FailedReport():
            return await _stream_failed(session, report)
        case messages.BandwidthReport():
            if report.stream not in session.plays:
                return None  # the play ended meanwhile
            return StreamPaused(stream=report.stream) if report.paused else StreamResumed(stream=report.stream)
        case messages.RecordReport():
            if report.stream not in session.publishes:
                return None  # the stream ended meanwhile
            return StreamRecordStatus(stream=report.stream, status=report.status, info=report.reason)
        case messages.EndedReport():
            if report.player is not None:
                session.plays.pop(report.stream, None)
                return StreamStatus(stream=report.stream, status="STOPPED")
            # The publisher closed its peer connection.
            session.publishes_starting.pop(report.stream, None)
            session.publishes.pop(report.stream, None)
            record = await process_context().stream_registry.stream_get(report.stream)
            if record is not None:
                await stream_end(record)
            return None
        case messages.SpeakersReport():
            await events.room_passing_event_send(report.room, RoomSpeakers(
                room=report.room,
                speakers=[Speaker(participant=s.participant, stream=s.stream, level=s.level) for s in report.speakers],
            ))
        case messages.LoadReport():
            logger.warning("a load report reached a connection: %s", report)
    return None


async def _stream_publishing(session: Session, report: messages.PublishingReport) -> StreamStatus | None:
    """The stream's first media arrived: it becomes history, and news to the room."""
    request = session.publishes_starting.pop(report.stream, None)
    record = await process_context().stream_registry.stream_get(report.stream)
    if request is None or record is None:
        return None  # ended meanwhile
    await process_context().history_outbox.write(
        "stream_start",
        live_id=request.room_id, session=session.sid, login=session.username, stream_id=report.stream,
        kind=record.kind, record=request.record, codec="+".join(report.codecs.values()), at_ms=now_ms(),
    )
    seq = await process_context().live_state.room_event_seq(record.room)
    # Queued behind this handler: the client gets PUBLISHING first.
    await events.room_event_send(
        record.room, RoomPublished(room=record.room, stream=Stream.model_validate(record.payload)), seq=seq
    )
    return StreamStatus(stream=report.stream, status="PUBLISHING")


async def _stream_failed(session: Session, report: messages.FailedReport) -> StreamStatus | None:
    info = _client_info(report.reason)
    if report.request_id is not None:
        # The node refused the command: nothing started.
        request = session.media_requests.pop(report.request_id, None)
        if request is None:
            return None
        if report.stream is not None:
            (session.plays if report.player is not None else session.publishes).pop(report.stream, None)
        if report.player is None:
            if report.stream is not None:
                await process_context().stream_registry.stream_remove(report.stream)
            return StreamStatus.refused(request.client_request_id, None, info)
        return StreamStatus.refused(request.client_request_id, report.stream, info)
    if report.stream is None:
        return None
    if report.player is not None:
        session.plays.pop(report.stream, None)
        return StreamStatus.failed(report.stream, info)
    session.publishes_starting.pop(report.stream, None)
    session.publishes.pop(report.stream, None)
    record = await process_context().stream_registry.stream_get(report.stream)
    if record is not None:
        await stream_end(record, publisher_info=info)
    return None


# --- media nodes -------------------------------------------------------------------


async def room_media_release(room: str) -> None:
    """The room ended: its next life may be pinned to another node."""
    await process_context().stream_registry.room_node_release(room)


async def nodes_sweep() -> None:
    """End the streams of media nodes that stopped heartbeating."""
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
        await media_nodes_dead.asend(sender=None, alive=set(alive))


async def room_participant_streams(room: str) -> dict[str, list[Stream]]:
    streams: dict[str, list[Stream]] = {}
    for record in await process_context().stream_registry.room_streams(room):
        streams.setdefault(record.participant, []).append(Stream.model_validate(record.payload))
    return streams
