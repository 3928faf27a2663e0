"""A protocol v1 client over ``websockets`` (docs/protocol.md): requests
matched to replies by ``re``, every event handed to a callback."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

OPEN_TIMEOUT_S = 10.0
# The protocol's limit on one message; a load test's offers stay far below it.
MAX_MESSAGE_BYTES = 65_536

EventHandler = Callable[[dict[str, Any]], None]


class SignalingError(Exception):
    """The server could not be reached, refused the session, or went away."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SignalingClient:
    def __init__(self, socket: ClientConnection, on_event: EventHandler) -> None:
        self._socket = socket
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, origin: str, on_event: EventHandler) -> SignalingClient:
        try:
            socket = await connect(url, origin=origin, open_timeout=OPEN_TIMEOUT_S,  # type: ignore[arg-type]
                                   max_size=MAX_MESSAGE_BYTES, compression=None)
        except InvalidStatus as error:
            status = error.response.status_code
            hint = " (the Origin is not in the server's ALLOWED_HOSTS? see --origin)" if status == 403 else ""
            raise SignalingError("connect_failed", f"{url} refused the WebSocket: HTTP {status}{hint}") from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
            raise SignalingError("connect_failed", f"cannot open {url}: {error or type(error).__name__}") from None
        return cls(socket, on_event)

    async def _read(self) -> None:
        try:
            async for text in self._socket:
                frame = json.loads(text)
                if "re" in frame:  # events never carry "re"
                    future = self._waiting.pop(str(frame["re"]), None)
                    if future is not None and not future.done():
                        future.set_result(frame)
                    elif frame.get("re") is None:
                        self._on_event(frame)  # a reply to a request it could not read: an error to count
                else:
                    self._on_event(frame)
        except ConnectionClosed as closed:
            self.close_reason = f"closed ({closed.rcvd.code if closed.rcvd else 'no close frame'})"
        except (ValueError, OSError) as error:
            self.close_reason = f"read failed: {error}"
        finally:
            if not self.close_reason:
                self.close_reason = "closed by the server"
            self.closed.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(SignalingError("closed", f"connection {self.close_reason}"))
            self._waiting.clear()

    async def request(self, type: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Send a request and wait for its reply (SignalingError if the connection ends first)."""
        if self.closed.is_set():
            raise SignalingError("closed", f"connection {self.close_reason}")
        request_id = f"q{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            await self._socket.send(json.dumps({"type": type, "id": request_id, **fields}, ensure_ascii=False))
            async with asyncio.timeout(timeout):
                return await future
        except ConnectionClosed:
            raise SignalingError("closed", f"connection {self.close_reason or 'closed'}") from None
        except TimeoutError:
            raise SignalingError("timeout", f"no reply to {type} within {timeout:g} s") from None
        finally:
            self._waiting.pop(request_id, None)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._socket.close(), 5)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
