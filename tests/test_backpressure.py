# Twisted's web and testing modules are untyped.
# mypy: disable-error-code="no-untyped-call"
"""The streaming back-pressure middleware on a real Twisted request and channel.

The transport is Twisted's StringTransport; the test plays its part by
calling the channel's pauseProducing/resumeProducing, as a TCP transport
does when its write buffer passes 64 KiB and when it has drained.
(tests/integration/test_slow_downloads.py measures the effect on daphne.)
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import Any

from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel, Request

from conference_site.backpressure import StreamingBackPressure, daphne_request

CHUNKS = [b"a" * 10, b"b" * 10, b"c" * 10]  # 30 bytes, the app's Content-Length


def _request_on_a_channel() -> tuple[HTTPChannel, StringTransport, Request]:
    channel = HTTPChannel()
    transport = StringTransport()
    channel.makeConnection(transport)
    request = Request(channel)
    request.method, request.clientproto = b"GET", b"HTTP/1.1"
    return channel, transport, request


async def _handle_reply(request: Request, message: dict[str, Any]) -> None:
    """What daphne's server.handle_reply does with a message: write it to the request at once."""
    if message["type"] == "http.response.start":
        request.setResponseCode(message["status"])
        for name, value in message["headers"]:
            request.responseHeaders.addRawHeader(name, value)
    else:
        request.write(message.get("body", b""))


class StreamingApp:
    """A streaming response that notes each chunk once ``send`` has returned for it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"30")]})
        for chunk in CHUNKS:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self.sent.append(chunk)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_a_paused_connection_holds_the_next_chunk_until_it_resumes() -> None:
    channel, transport, request = _request_on_a_channel()
    app = StreamingApp()
    # The first chunk fills the buffer (as the transport would say after writing it).
    first_written = asyncio.Event()
    request.write = _pausing_after_first_write(request.write, channel, first_written)  # type: ignore[method-assign]
    task = asyncio.create_task(
        StreamingBackPressure(app)({"type": "http"}, _never, functools.partial(_handle_reply, request))
    )
    await first_written.wait()
    # Paused before send returned for the first chunk: the app is still in
    # that send, and has not written the second.
    assert app.sent == []
    assert b"b" not in transport.value()
    channel.resumeProducing()
    await task
    assert app.sent == CHUNKS
    assert transport.value().endswith(b"\r\n\r\n" + b"".join(CHUNKS))
    # Unregistered before the end: a kept-alive connection's next request starts clean.
    assert request.producer is None
    assert channel._requestProducer is None


def _pausing_after_first_write(write: Any, channel: HTTPChannel, first_written: asyncio.Event) -> Any:
    """Request.write that pauses the channel after the first body chunk, as a full buffer does."""
    writes = 0

    def paused_write(data: bytes) -> None:
        nonlocal writes
        write(data)
        writes += 1
        if writes == 1:
            channel.pauseProducing()
            first_written.set()

    return paused_write


async def _never() -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError


async def test_a_lost_connection_releases_a_waiting_send() -> None:
    channel, _transport, request = _request_on_a_channel()
    app = StreamingApp()
    first_written = asyncio.Event()
    request.write = _pausing_after_first_write(request.write, channel, first_written)  # type: ignore[method-assign]
    task = asyncio.create_task(
        StreamingBackPressure(app)({"type": "http"}, _never, functools.partial(_handle_reply, request))
    )
    await first_written.wait()
    assert app.sent == []
    channel.stopProducing()  # what the transport does when the connection is lost
    await task
    assert app.sent == CHUNKS


async def test_under_another_server_messages_pass_unchanged() -> None:
    received: list[Mapping[str, Any]] = []

    async def send(message: Mapping[str, Any]) -> None:
        received.append(message)

    assert daphne_request(send) is None
    await StreamingBackPressure(StreamingApp())({"type": "http"}, _never, send)
    assert [message.get("body") for message in received] == [None, *CHUNKS, b""]
