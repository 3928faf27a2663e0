"""The WebSocket edge of protocol v1: decode, validate, dispatch, encode."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from contextlib import AbstractContextManager, suppress
from typing import Any

from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ops import metrics
from ops.logs import log_context
from rooms import consumer_loop, events, frames, live_epoch, protocol, runtime, services, streams, transport
from rooms.access_tokens import CLOCK_SKEW_S
from rooms.channel_layers import ClosingChannelLayer
from rooms.dispatch import dispatch
from rooms.live.context import process_context
from rooms.media import messages
from rooms.server_messages import ErrorReply, ServerMessage, SessionStatus
from rooms.session import Session
from rooms.turn import ice_servers_refresh_at

logger = logging.getLogger(__name__)


def _retrieve_outcome(task: asyncio.Future[None]) -> None:
    """Marks a dispatch loop's outcome as seen: it ended with its consumer."""
    if not task.cancelled():
        task.exception()

CLOSE_MESSAGE_TOO_BIG = transport.CLOSE_MESSAGE_TOO_BIG
CLOSE_POLICY_VIOLATION = transport.CLOSE_POLICY_VIOLATION
# Received messages that may wait for this consumer before the server stops
# reading the socket: at most 16 frames of 64 KiB, 1 MiB, per connection.
INBOUND_QUEUE_MAX = 16
# Redis unreachable (refused, reset, or silent past the client's timeout).
LIVE_STATE_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


def _hears_events() -> bool:
    runtime = process_context().runtime
    return runtime is None or runtime.hears_events


def _frame_size(text_data: str | None, bytes_data: bytes | None) -> int:
    if text_data is None:
        return len(bytes_data or b"")
    if len(text_data) * 4 <= protocol.MAX_FRAME_BYTES:  # UTF-8 needs at most 4 bytes a code point
        return len(text_data)
    return len(text_data.encode())


def _is_kick_of(event: dict[str, Any], login: str) -> bool:
    return bool(
        event["type"] == "room.left" and event.get("reason") == "kicked" and event["participant"]["name"] == login
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


class RoomConsumer(AsyncWebsocketConsumer):
    session: Session | None = None
    process_id: str = ""
    client_address: str = ""
    # Ends the session when its access token expires (re-armed by session.refresh).
    token_expiry: asyncio.TimerHandle | None = None
    token_expiry_at: int | None = None
    # Sends fresh TURN credentials before the session's expire (rooms.turn).
    ice_refresh: asyncio.TimerHandle | None = None
    ice_refresh_for: int | None = None
    # The daphne connection under this consumer (None under other servers).
    connection: transport.DaphneConnection | None = None
    send_buffer_max: int = 0
    # Set once the connection is being closed for abuse: nothing more is queued for it.
    sending_stopped: bool = False
    # Counted in the process's connections by address (CONNECTIONS_PER_IP) until it ends.
    address_counted: bool = False
    # Counted in conference_websocket_connections until it ends.
    connection_counted: bool = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels' dispatch loop, once cancelled, waits for its pending
        # channel-layer receive to end; channels_redis's list layer can hold
        # that receive in a blocking pop for seconds after the cancel. The
        # session's drop must not wait for it: the loop runs as a task of its
        # own, and a cancel here leaves it to unwind while the drop goes on.
        loop = asyncio.ensure_future(self._messages_handle(scope, receive, send))
        loop.add_done_callback(_retrieve_outcome)
        try:
            await asyncio.shield(loop)
        except asyncio.CancelledError:
            loop.cancel()
            raise
        finally:
            # However the consumer ends (closed, crashed, cancelled by the
            # server), its rooms must see the drop, or a ghost stays in them
            # for as long as this process lives.
            await asyncio.shield(self.disconnect(0))
            # Nor may its channel stay in the layer (rooms.channel_layers).
            if isinstance(self.channel_layer, ClosingChannelLayer) and getattr(self, "channel_name", None):
                await asyncio.shield(self.channel_layer.channel_close(self.channel_name))

    async def _messages_handle(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' ``AsyncConsumer.__call__``, with ``rooms.consumer_loop`` handling the messages."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        self.base_send = send
        with suppress(StopConsumer):
            await consumer_loop.handle_each(sources, self.dispatch)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch hops to a thread to close stale database
        # connections before every message, events included: at 5000 events
        # a second that hop was a fifth of the process's CPU. This consumer
        # touches the database only through rooms.database.db_call, which
        # does the same check in its own thread.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        if message["type"].startswith("websocket."):
            await handler(message)
            return
        try:
            await handler(message)
        except Disconnected:
            pass  # an event raced the close; websocket.disconnect follows
        except Exception:
            logger.exception("handling %s failed", message["type"])

    async def connect(self) -> None:
        self.process_id = (await runtime.ensure_started()).process_id
        client = self.scope.get("client")
        self.client_address = str(client[0]) if client else ""
        self.send_buffer_max = settings.WS_SEND_BUFFER_MAX
        self.connection = transport.connection_of(self.base_send)
        if self.connection is not None:
            self.connection.limit_inbound(protocol.MAX_FRAME_BYTES)
            self.connection.bound_inbound_queue(INBOUND_QUEUE_MAX)
        await self.accept()
        process_context().connections.add(self)
        self.connection_counted = True
        metrics.WEBSOCKET_CONNECTIONS.inc()
        if self.client_address:
            self.address_counted = process_context().connections_by_address.take(
                self.client_address, settings.CONNECTIONS_PER_IP
            )
            if not self.address_counted:
                metrics.RATE_LIMIT_REFUSALS.labels("connections_per_ip").inc()
                await self._refuse_too_many_connections()

    async def _refuse_too_many_connections(self) -> None:
        # Accepted first so the client can read why: a refused handshake says nothing.
        logger.warning(
            "refusing a connection from %s: it has %d open (CONNECTIONS_PER_IP)",
            self.client_address, settings.CONNECTIONS_PER_IP,
        )
        await self.send_message(SessionStatus.disconnected("too_many_connections"))
        self.sending_stopped = True
        if self.connection is not None:
            self.connection.close_policy_violation()
        else:
            await self.close(code=CLOSE_POLICY_VIOLATION)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.connection is not None:
            self.connection.inbound_taken()
        if self.sending_stopped:
            return  # being closed: nothing it asks is answered
        if _frame_size(text_data, bytes_data) > protocol.MAX_FRAME_BYTES:
            await self._close_for_abuse()
            return
        if text_data is None:
            await self.send_message(ErrorReply(re=None, code="bad_request", message="binary frames are not accepted"))
            return
        try:
            content = json.loads(text_data, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            await self.send_message(ErrorReply(re=None, code="bad_request", message="a frame must be JSON text"))
            return
        try:
            message = protocol.parse_client_message(content)
        except protocol.MessageError as error:
            await self.send_message(error.reply())
            return
        # The request's room and stream join the session's in every line logged for it.
        with self._log_context(room=getattr(message, "room", None), stream=getattr(message, "stream", None)):
            await self._serve(message)

    def _log_context(self, **fields: object) -> AbstractContextManager[None]:
        session = self.session
        if session is None:
            return log_context(**fields)
        return log_context(session=session.sid, identity=session.username, **fields)

    async def _serve(self, message: protocol.AnyClientMessage) -> None:
        try:
            if not isinstance(message, protocol.Ping) and not _hears_events():
                # Back from an outage of Redis, but events would not reach
                # this process's consumers yet (rooms.runtime.events_probe).
                raise ConnectionError("this process does not receive events yet")
            if not await self._live_epoch_check(message):
                return
            reply = await dispatch(self, message)
        except LIVE_STATE_UNREACHABLE as error:
            logger.warning("%s failed: the live state is unreachable (%r)", message.type, error, exc_info=True)
            reply = ErrorReply(
                re=message.id, code="unavailable", message="the server's live state is unreachable; try again"
            )
        except Exception:
            # One failing request must not take the connection down with it.
            logger.exception("handling %s failed", message.type)
            reply = ErrorReply(
                re=message.id, code="internal_error", message="the server failed to handle this request"
            )
        if reply is not None:
            await self.send_message(reply)
        self._token_expiry_arm()
        self._ice_refresh_arm()

    async def _live_epoch_check(self, message: protocol.AnyClientMessage) -> bool:
        """False when the live state this session lived in is gone: the session
        was just ended (``state_lost``) and the request is not served."""
        if self.session is None or isinstance(message, protocol.Ping):
            return True
        if isinstance(message, protocol.RoomMessage) and message.to is None:
            return True  # checked in the same step as the message's (services.chat_message_send)
        await live_epoch.epoch_current()
        return self.session is not None

    def _session_release(self) -> Session | None:
        """Take the connection's session away (it ends), uncounting it."""
        session, self.session = self.session, None
        if session is not None:
            metrics.SESSIONS.dec()
        return session

    def live_epoch(self) -> str | None:
        return self.session.epoch if self.session is not None else None

    async def state_lost(self) -> None:
        session = self._session_release()
        if session is None:
            return
        # Told first: the client reconnects while the history is written.
        await self.send_message(SessionStatus.disconnected("state_lost"))
        self.sending_stopped = True
        await self.close()
        await services.session_state_lost(session=session)

    def _token_expiry_arm(self) -> None:
        """(Re)arm the session's end at its token's expiry, allowing the clock skew."""
        claims = self.session.claims if self.session is not None else None
        expires_at = claims.expires_at if claims is not None else None
        if expires_at == self.token_expiry_at:
            return
        if self.token_expiry is not None:
            self.token_expiry.cancel()
            self.token_expiry = None
        self.token_expiry_at = expires_at
        if expires_at is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, expires_at + CLOCK_SKEW_S - time.time())
        self.token_expiry = loop.call_later(delay, lambda: loop.create_task(self._token_expired(expires_at)))

    def _ice_refresh_arm(self) -> None:
        """(Re)arm the sending of fresh TURN credentials before the session's expire."""
        expires_at = self.session.ice_servers_expires_at if self.session is not None else None
        if expires_at == self.ice_refresh_for:
            return
        if self.ice_refresh is not None:
            self.ice_refresh.cancel()
            self.ice_refresh = None
        self.ice_refresh_for = expires_at
        if expires_at is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, ice_servers_refresh_at(expires_at) - time.time())
        self.ice_refresh = loop.call_later(delay, lambda: loop.create_task(self._ice_servers_renew(expires_at)))

    async def _ice_servers_renew(self, expires_at: int) -> None:
        session = self.session
        if session is None or session.ice_servers_expires_at != expires_at:
            return  # renewed or gone meanwhile
        renewed = services.session_ice_servers_renew(session=session)
        if renewed is not None:
            await self.send_message(renewed)
        self._ice_refresh_arm()

    async def _token_expired(self, expires_at: int) -> None:
        session = self.session
        if session is None or session.claims is None or session.claims.expires_at != expires_at:
            return  # refreshed or gone meanwhile
        # Through the live state, as any other ending: the rooms see the
        # drop and this connection gets session.end (DISCONNECTED token_expired).
        await services.session_drop(sid=session.sid, reason="token_expired")

    async def _close_for_abuse(self) -> None:
        logger.warning("closing a connection that sent a frame over %d bytes", protocol.MAX_FRAME_BYTES)
        if self.session is not None:
            await self.send_message(SessionStatus.disconnected("message_too_big"))
        self.sending_stopped = True
        # Drop the session now rather than when the server stack reports
        # the close: the room hears of it however the socket ends.
        await self.disconnect(CLOSE_MESSAGE_TOO_BIG)
        if self.connection is not None:
            self.connection.close_message_too_big()
        else:
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)

    async def _close_slow_consumer(self, pending: int) -> None:
        logger.warning(
            "closing a connection from %s that stopped reading: %d bytes waiting to be sent (WS_SEND_BUFFER_MAX %d)",
            self.client_address or "?", pending, self.send_buffer_max,
        )
        await self._end_as_slow_consumer()

    async def _end_as_slow_consumer(self) -> None:
        self.sending_stopped = True
        if self.session is not None:
            # Queued behind the rest: it arrives if the client reads again
            # before the close handshake times out (1 s), when the transport
            # drops the connection and its buffer.
            await self.send(text_data=frames.frame_text(SessionStatus.disconnected("slow_consumer").frame()))
        await self.disconnect(1000)
        await self.close()

    async def disconnect(self, code: int) -> None:
        process_context().connections.discard(self)
        if self.connection_counted:
            self.connection_counted = False
            metrics.WEBSOCKET_CONNECTIONS.dec()
        if self.address_counted:
            self.address_counted = False
            process_context().connections_by_address.release(self.client_address)
        if self.token_expiry is not None:
            self.token_expiry.cancel()
            self.token_expiry = None
        if self.ice_refresh is not None:
            self.ice_refresh.cancel()
            self.ice_refresh = None
        session = self._session_release()
        if session is None:
            return
        for attempt in range(4):
            try:
                await services.session_close(session=session)
                return
            except Exception:
                # Live state or database briefly unreachable: a session left
                # behind here would stay in its rooms while this process lives.
                logger.exception("dropping session %s failed (attempt %d)", session.sid, attempt + 1)
                await asyncio.sleep(0.5 * 2**attempt)

    async def send_message(self, message: ServerMessage) -> None:
        await self.send_frame(message.frame())

    async def send_frame(self, frame: dict[str, Any]) -> None:
        """Send a server message's frame (``ServerMessage.frame``) as text,
        unless the client has left more than WS_SEND_BUFFER_MAX bytes unread."""
        if await self._may_send():
            await self.send(text_data=frames.frame_text(frame))

    async def _may_send(self) -> bool:
        """Whether a frame may be sent now; closes a client that stopped reading."""
        if self.sending_stopped:
            return False
        if self.connection is not None:
            # Measured before this frame: one large frame (a room.state with
            # its history) is no sign of a client that stopped reading.
            pending = self.connection.pending_bytes()
            if pending > self.send_buffer_max:
                await self._close_slow_consumer(pending)
                return False
        return True

    async def _send_event(self, message: dict[str, Any]) -> None:
        """Send a room event's frame, encoded once for all its recipients (``rooms.frames``)."""
        if "text" not in message:
            await self.send_frame(message["event"])
        elif await self._may_send():
            if self.connection is not None:
                self.connection.send_prepared(frames.prepared_frame(message))
            else:
                await self.send(text_data=message["text"])

    # --- Channel layer handlers ------------------------------------------------

    async def room_event(self, message: dict[str, Any]) -> None:
        if message.get("exclude") == self.channel_name or self.session is None:
            return
        event = message["event"]
        membership = self.session.rooms.get(event["room"])
        if membership is None:
            return
        if event["type"] == "room.unpublished":
            self.session.stream_forget(event["stream"]["id"])
        if event["type"] == "room.finalized" or _is_kick_of(event, self.session.username):
            self.session.room_forget(event["room"])
            await events.room_group_discard(event["room"], self.channel_name)
        elif message["seq"] is not None and message["seq"] <= membership.joined_seq:
            return  # sent before this connection joined; its room.state covered it
        await self._send_event(message)
        if event["type"] == "room.message" and not self.sending_stopped:
            process_context().chat_deliveries.delivered(message)

    async def client_send(self, message: dict[str, Any]) -> None:
        """A frame for this client from another process (a stream's status)."""
        await self.send_frame(message["frame"])

    async def media_report(self, message: dict[str, Any]) -> None:
        """A media node's report about this connection's publish or play."""
        try:
            report = messages.report_decode(message)
        except messages.NodeMessageError as error:
            logger.error("a media node report could not be read (%s): %s", error.reason, error.detail)
            return
        if self.session is None:
            return  # the session ended, and its streams and plays with it
        with self._log_context(room=getattr(report, "room", None), stream=getattr(report, "stream", None)):
            reply = await streams.node_report(session=self.session, report=report)
        if reply is not None:
            await self.send_message(reply)

    async def channel_overflow(self, message: dict[str, Any]) -> None:
        """The channel layer dropped messages for this connection (its queue
        overflowed, rooms.channel_layers): going on would leave the client
        with a gap, so it is told slow_consumer and reconnects to a fresh state."""
        if self.sending_stopped:
            return
        logger.warning(
            "closing a connection from %s: %d messages for it were dropped (CHANNEL_QUEUE_MAX)",
            self.client_address or "?", message["dropped"],
        )
        await self._end_as_slow_consumer()

    async def session_end(self, message: dict[str, Any]) -> None:
        # Another connection took this session over (session.connect resume);
        # it already removed the memberships, so there is nothing to drop.
        session = self._session_release()
        for room in session.rooms if session else ():
            await events.room_group_discard(room, self.channel_name)
        await self.send_message(SessionStatus.disconnected(message["reason"]))
        await self.close()
