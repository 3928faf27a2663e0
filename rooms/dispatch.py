"""Route a parsed client message to the service that handles it, and turn
what the service returns (or refuses) into the reply."""

from __future__ import annotations

from typing import Protocol

from ops import metrics
from rooms import moderation, permissions, protocol, services, streams
from rooms.server_messages import ErrorReply, Ok, Pong, ServerMessage, SessionStatus
from rooms.session import ServiceError, Session


class Connection(Protocol):
    """What a handler may need from the connection it serves."""

    channel_name: str
    session: Session | None
    process_id: str
    client_address: str


async def dispatch(connection: Connection, message: protocol.AnyClientMessage) -> ServerMessage | None:
    try:
        return await _handle(connection, message)
    except ServiceError as error:
        return ErrorReply(re=message.id, code=error.code, message=error.message)


async def _handle(connection: Connection, message: protocol.AnyClientMessage) -> ServerMessage | None:
    if isinstance(message, protocol.Ping):
        return Pong(re=message.id)
    if isinstance(message, protocol.SessionConnect):
        return await _session_connect(connection, message)
    session = connection.session
    if session is None:
        raise ServiceError("not_connected", "send session.connect first")
    match message:
        case protocol.SessionRefresh():
            return await services.session_refresh(session=session, token=message.token, request_id=message.id)
        case protocol.RoomJoin():
            return await services.room_join(
                session=session, room=message.room, record=message.record, request_id=message.id
            )
        case protocol.RoomLeave():
            return await services.room_leave(session=session, room=message.room, request_id=message.id)
        case protocol.RoomMessage():
            return await services.chat_message_send(
                session=session, room=message.room, text=message.text, to=message.to, request_id=message.id
            )
        case protocol.StreamPublish():
            return await streams.stream_publish(
                session=session, room=message.room, kind=message.kind, record=message.record, sdp=message.sdp,
                request_id=message.id,
            )
        case protocol.StreamPlay():
            return await streams.stream_play(session=session, stream=message.stream, sdp=message.sdp,
                                             request_id=message.id)
        case protocol.StreamUnpublish():
            return await streams.stream_unpublish(session=session, stream=message.stream, request_id=message.id)
        case protocol.StreamStop():
            return await streams.stream_stop(session=session, stream=message.stream, request_id=message.id)
        case protocol.StreamMute():
            other_room = await streams.stream_room_of_other(session, message.stream)
            if other_room is not None and permissions.is_room_admin(session, other_room):
                await moderation.stream_mute_by(
                    room=other_room, stream=message.stream, audio=message.audio, video=message.video,
                    by=session.username, address=session.address,
                )
                return Ok(re=message.id)
            return await streams.stream_mute(
                session=session, stream=message.stream, audio=message.audio, video=message.video,
                request_id=message.id,
            )
        case protocol.RoomKick():
            return await _room_kick(session, message)
        case protocol.RoomLock():
            permissions.moderation_check(session, message.room)
            if not await moderation.room_lock_set(
                room=message.room, locked=message.locked, by=session.username, address=session.address
            ):
                raise ServiceError("unknown_room", f"room {message.room!r} is not live")
            return Ok(re=message.id)
        case protocol.RoomEnd():
            permissions.moderation_check(session, message.room)
            if not await moderation.room_end(room=message.room, by=session.username, address=session.address):
                raise ServiceError("unknown_room", f"room {message.room!r} is not live")
            return Ok(re=message.id)
    raise ServiceError("not_implemented", f"{message.type} is not available on this server yet")


async def _room_kick(session: Session, message: protocol.RoomKick) -> Ok:
    permissions.moderation_check(session, message.room)
    target = protocol.username_normalized(message.participant) or message.participant
    if not await moderation.participant_kick(
        room=message.room, login=target, by=session.username, address=session.address
    ):
        raise ServiceError("unknown_participant", f"{message.participant!r} is not in room {message.room!r}")
    return Ok(re=message.id)


async def _session_connect(connection: Connection, message: protocol.SessionConnect) -> SessionStatus:
    if connection.session is not None:
        raise ServiceError("already_connected", "this connection already has a session")
    session, reply = await services.session_connect(
        channel=connection.channel_name,
        process=connection.process_id,
        username=message.username,
        token=message.token,
        resume=message.resume,
        request_id=message.id,
        address=connection.client_address,
    )
    if session is not None:
        connection.session = session
        metrics.SESSIONS.inc()
    return reply
