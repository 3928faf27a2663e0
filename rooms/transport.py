"""What the WebSocket edge can see of the server's connection under it.

ASGI gives an application no view of the transport: daphne's ``send``
writes into Twisted's buffer at once and never waits, so a client that
stops reading makes the server buffer whatever the application sends to it,
without limit. The only honest measure of "this client is not reading" is
that buffer, so the consumer reaches the daphne connection behind its
``send`` (daphne hands every application ``partial(Server.handle_reply,
protocol)``, which Channels' session middleware wraps once as
``real_send``) and reads the bytes Twisted has not yet written to the
socket. Counting what the consumer sent cannot replace it: nothing tells
the application what the socket has written since.

Inbound, daphne reads as fast as the client sends and queues every message
for the application without limit; the handle stops reading the socket
while too many received messages wait (TCP then slows the client down) and
starts again once the application has caught up.

The same handle sets the transport's inbound limits on the connection
itself (autobahn copies its options from the factory to each connection
when it opens, and reads them from there), so a server started as plain
``daphne conference_site.asgi:application`` refuses an oversize frame in
the transport, with close code 1009, before buffering it, whatever its
command-line limits.

Under another server (or Channels' in-process test communicator) there is
no daphne connection: ``connection_of`` answers None and the consumer falls
back to its own checks.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from autobahn.exception import Disconnected
from twisted.internet import abstract

if TYPE_CHECKING:
    from rooms.frames import PreparedFrame

CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_POLICY_VIOLATION = 1008
# The number of wrappers ``connection_of`` looks through before giving up.
_MAX_WRAPPERS = 4


class DaphneConnection:
    """One daphne WebSocket connection (an autobahn protocol on a Twisted transport)."""

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self._reading_paused = False
        self._inbound_max = 0

    def bound_inbound_queue(self, max_messages: int) -> None:
        """Stop reading the socket while ``max_messages`` received messages
        wait for the application (see ``inbound_taken``)."""
        self._inbound_max = max_messages
        queue = self._protocol.application_queue
        deliver = self._protocol.onMessage

        def on_message(payload: bytes, is_binary: bool) -> None:
            deliver(payload, is_binary)
            if queue.qsize() >= max_messages and not self._reading_paused:
                self._reading_paused = True
                self._socket_transport().pauseProducing()

        # autobahn calls self.onMessage: the instance attribute wraps daphne's.
        self._protocol.onMessage = on_message

    def inbound_taken(self) -> None:
        """The application took a message: read again once half the queue is free."""
        if self._reading_paused and self._protocol.application_queue.qsize() <= self._inbound_max // 2:
            self._reading_paused = False
            self._socket_transport().resumeProducing()

    def _socket_transport(self) -> Any:
        transport = self._protocol.transport
        for _ in range(_MAX_WRAPPERS):
            inner = getattr(transport, "transport", None)
            if inner is None:
                break
            transport = inner
        return transport

    def limit_inbound(self, max_bytes: int) -> None:
        """Refuse a message or frame over ``max_bytes`` in the transport: close
        1009 (not a dropped socket, autobahn's default) and nothing buffered."""
        self._protocol.maxMessagePayloadSize = max_bytes
        self._protocol.maxFramePayloadSize = max_bytes
        self._protocol.failByDrop = False

    def close_message_too_big(self) -> None:
        """Close with 1009, which the ASGI close message cannot carry through
        daphne (autobahn takes only 1000 and 3000-4999 from applications)."""
        self._protocol.sendCloseFrame(code=CLOSE_MESSAGE_TOO_BIG, isReply=False)

    def close_policy_violation(self) -> None:
        """Close with 1008 (a connection over CONNECTIONS_PER_IP), which
        daphne does not take from an application either."""
        self._protocol.sendCloseFrame(code=CLOSE_POLICY_VIOLATION, isReply=False)

    def send_prepared(self, frame: PreparedFrame) -> None:
        """Write a frame made once for many connections (``rooms.frames``).

        What daphne's ``websocket.send`` does for text, without its per
        message encoding and framing: the bytes go to the transport, or
        behind what autobahn still queues. Whatever autobahn does beyond
        writing the bytes (compression, fragmenting, its size limit) it
        does in ``sendMessage``, as for any frame.
        """
        protocol = self._protocol
        if protocol.state != protocol.STATE_OPEN:
            raise Disconnected("Attempt to send on a closed protocol")
        size = len(frame.payload)
        if (
            protocol._perMessageCompress is not None
            or 0 < protocol.maxMessagePayloadSize < size
            or 0 < protocol.autoFragmentSize < size
        ):
            protocol.sendMessage(frame.payload, False)
        elif protocol.send_queue:
            protocol.sendData(frame.prepared.payloadHybi)
        else:
            protocol.transport.write(frame.prepared.payloadHybi)

    def pending_bytes(self) -> int:
        """Bytes sent by the application that have not reached the socket yet."""
        total = sum(len(data) for data, _ in getattr(self._protocol, "send_queue", ()))
        transport = getattr(self._protocol, "transport", None)
        # A TLS connection is a wrapper (its not yet encrypted data) over TCP.
        for _ in range(_MAX_WRAPPERS):
            if transport is None:
                break
            total += _write_buffer_bytes(transport)
            transport = getattr(transport, "transport", None)
        return total


def _write_buffer_bytes(transport: Any) -> int:
    total = 0
    # Only the socket's own transport: a TLS wrapper would pass these
    # attributes through to it, and its buffer would count twice.
    if isinstance(transport, abstract.FileDescriptor):
        total += len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    for chunk in getattr(transport, "_appSendBuffer", None) or ():  # TLSMemoryBIOProtocol
        total += len(chunk)
    return total


def _is_daphne_protocol(value: object) -> bool:
    return hasattr(value, "transport") and hasattr(value, "sendCloseFrame") and hasattr(value, "handle_reply")


def connection_of(send: Any) -> DaphneConnection | None:
    """The daphne connection behind an ASGI ``send`` callable, if there is one."""
    for _ in range(_MAX_WRAPPERS):
        if isinstance(send, functools.partial):
            if send.args and _is_daphne_protocol(send.args[0]):
                return DaphneConnection(send.args[0])
            return None
        send = getattr(getattr(send, "__self__", None), "real_send", None)
        if send is None:
            return None
    return None
