"""Back-pressure for streamed HTTP responses under daphne.

Daphne writes every ``http.response.body`` message into the connection's
write buffer at once and returns from ``send`` without waiting for the
socket, so a streaming response to a client that reads slowly (or not at
all) piles up in the process: three stalled downloads of a 400 MB record
once took a web process from 138 to 1,336 MiB. Twisted itself knows when
the buffer is full: it pauses a request's registered push producer when
the transport holds more than its ``bufferSize`` (64 KiB) and resumes it
when the socket has taken the data. This middleware registers such a
producer for each HTTP request and makes ``send`` of a body chunk return
only once the connection can take more, so the response's iterator (a
download's file reader) runs at the client's pace.

Daphne's ``send`` is ``functools.partial(server.handle_reply, request)``;
the request is taken from there. Under another server (one that applies
back-pressure in ``send`` itself, as uvicorn does) the middleware passes
everything through unchanged.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.web.http import Request
from zope.interface import implementer

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@implementer(IPushProducer)
class WritableGate:
    """A push producer whose only product is permission to write: open while the connection takes data."""

    def __init__(self) -> None:
        self._writable = asyncio.Event()
        self._writable.set()

    # camelCase: the names of Twisted's interface.
    def pauseProducing(self) -> None:
        self._writable.clear()

    def resumeProducing(self) -> None:
        self._writable.set()

    def stopProducing(self) -> None:
        # The connection is gone: nothing waits for it any more (daphne drops
        # what is sent after, and tells the application with http.disconnect).
        self._writable.set()

    async def writable(self) -> None:
        await self._writable.wait()


def daphne_request(send: Send) -> Request | None:
    """The Twisted request behind daphne's ``send``, or None under another server."""
    if isinstance(send, functools.partial) and send.args and isinstance(send.args[0], Request):
        return send.args[0]
    return None


def _connected(request: Request) -> bool:
    # Twisted drops a request's channel when the connection is lost (sets
    # it to None) and when the response is done (deletes the attribute).
    return getattr(request, "channel", None) is not None


class StreamingBackPressure:
    """ASGI middleware: a streamed body chunk is sent only when the client's connection can take it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = daphne_request(send) if scope["type"] == "http" else None
        if request is None:
            await self.app(scope, receive, send)
            return
        gate: WritableGate | None = None

        def gate_remove() -> None:
            # Before the response's last message: the channel serves the next
            # request of a kept-alive connection, which must not find this producer.
            nonlocal gate
            if gate is not None and request.producer is gate and _connected(request):
                request.unregisterProducer()  # type: ignore[no-untyped-call]
            gate = None

        async def paced_send(message: Message) -> None:
            nonlocal gate
            streaming = message["type"] == "http.response.body" and message.get("more_body", False)
            if not streaming:
                gate_remove()
                await send(message)
                return
            if gate is None and request.producer is None and _connected(request):
                gate = WritableGate()
                request.registerProducer(gate, True)  # type: ignore[no-untyped-call]
            await send(message)
            if gate is not None:
                await gate.writable()

        try:
            await self.app(scope, receive, paced_send)
        finally:
            gate_remove()
