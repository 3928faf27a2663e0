"""Route a parsed client message to the service that handles it, and turn
what the service returns (or refuses) into the reply."""

from __future__ import annotations

from typing import Protocol

from rooms import protocol, services, streams
from rooms.server_messages import ErrorReply, Pong, ServerMessage, SessionStatus
from rooms.session import ServiceError, Session


class Connection(Protocol):
    """What a handler may need from the connection it serves."""

    channel_name: str
    session: Session | None
    process_id: str


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
            return await streams.stream_mute(
                session=session, stream=message.stream, audio=message.audio, video=message.video,
                request_id=message.id,
            )
    raise ServiceError("not_implemented", f"{message.type} is not available on this server yet")


async def _session_connect(connection: Connection, message: protocol.SessionConnect) -> SessionStatus:
    if connection.session is not None:
        raise ServiceError("already_connected", "this connection already has a session")
    session, reply = await services.session_connect(
        channel=connection.channel_name,
        process=connection.process_id,
        username=message.username,
        resume=message.resume,
        request_id=message.id,
    )
    if session is not None:
        connection.session = session
    return reply
