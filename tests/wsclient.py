"""Protocol v1 test clients.

``ProtocolClient`` talks to the ASGI app in-process through Channels'
WebsocketCommunicator; ``SocketClient`` talks to a real server over a real
WebSocket. Both match replies by ``re`` and keep everything else, in order,
as events that a test waits for by type.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from channels.testing import WebsocketCommunicator

ORIGIN = "http://127.0.0.1"
_ids = itertools.count(1)


class _Client:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.replies: dict[str, dict[str, Any]] = {}

    async def send_raw(self, text: str) -> None:
        raise NotImplementedError

    async def _receive_text(self, timeout: float) -> str:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def _receive(self, timeout: float) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await self._receive_text(timeout))
        if "re" in frame:  # events never carry "re"
            self.replies[str(frame["re"])] = frame
        else:
            self.events.append(frame)
        return frame

    async def send(self, type: str, **fields: Any) -> str:
        request_id = f"r{next(_ids)}"
        await self.send_raw(json.dumps({"type": type, "id": request_id, **fields}, ensure_ascii=False))
        return request_id

    async def request(self, type: str, timeout: float = 5, **fields: Any) -> dict[str, Any]:
        return await self.reply(await self.send(type, **fields), timeout)

    async def reply(self, request_id: str, timeout: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while request_id not in self.replies:
                await self._receive(timeout)
        return self.replies.pop(request_id)

    async def next_frame(self, timeout: float = 5) -> dict[str, Any]:
        """The next frame whatever it is (for replies with ``re: null``)."""
        frame: dict[str, Any] = json.loads(await self._receive_text(timeout))
        return frame

    async def event(self, type: str, timeout: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for index, frame in enumerate(self.events):
                    if frame["type"] == type:
                        return self.events.pop(index)
                await self._receive(timeout)

    async def assert_no_event(self, type: str, within: float = 0.3) -> None:
        try:
            frame = await self.event(type, timeout=within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {type}: {frame}")

    async def connect_session(self, username: str, **fields: Any) -> dict[str, Any]:
        reply = await self.request("session.connect", username=username, **fields)
        assert reply["status"] == "ESTABLISHED", reply
        return reply


class ProtocolClient(_Client):
    def __init__(self, communicator: WebsocketCommunicator) -> None:
        super().__init__()
        self.communicator = communicator

    @classmethod
    async def open(cls, address: str = "") -> ProtocolClient:
        """A connection; from ``address`` (the scope's client) if given, else from no address."""
        from conference_site.asgi import application

        communicator = WebsocketCommunicator(application, "/ws/rooms/", headers=[(b"origin", ORIGIN.encode())])
        if address:
            communicator.scope["client"] = (address, 50000)
        connected, _ = await communicator.connect(timeout=5)
        assert connected, "the server refused the WebSocket"
        return cls(communicator)

    @classmethod
    async def connected(cls, username: str, address: str = "") -> ProtocolClient:
        client = await cls.open(address)
        await client.connect_session(username)
        return client

    async def send_raw(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def _receive_text(self, timeout: float) -> str:
        text: str = await self.communicator.receive_from(timeout=timeout)
        return text

    async def close(self) -> None:
        await self.communicator.disconnect()


class SocketClient(_Client):
    def __init__(self, socket: Any) -> None:
        super().__init__()
        self.socket = socket

    @classmethod
    async def open(cls, url: str) -> SocketClient:
        from websockets.asyncio.client import connect

        socket = await connect(url, origin=ORIGIN, open_timeout=5)  # type: ignore[arg-type]
        return cls(socket)

    @classmethod
    async def connected(cls, url: str, username: str) -> SocketClient:
        client = await cls.open(url)
        await client.connect_session(username)
        return client

    async def send_raw(self, text: str) -> None:
        await self.socket.send(text)

    async def _receive_text(self, timeout: float) -> str:
        async with asyncio.timeout(timeout):
            text: str = await self.socket.recv()
        return text

    async def close(self) -> None:
        await self.socket.close()
