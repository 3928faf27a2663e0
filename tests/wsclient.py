"""A protocol v1 test client over Channels' WebsocketCommunicator.

Replies are matched by ``re``; everything else is kept, in order, as events
that a test waits for by type.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from channels.testing import WebsocketCommunicator

from conference_site.asgi import application

ORIGIN = (b"origin", b"http://127.0.0.1")
_ids = itertools.count(1)


class ProtocolClient:
    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.events: list[dict[str, Any]] = []
        self.replies: dict[str, dict[str, Any]] = {}

    @classmethod
    async def open(cls, headers: list[tuple[bytes, bytes]] | None = None) -> ProtocolClient:
        communicator = WebsocketCommunicator(application, "/ws/rooms/", headers=headers or [ORIGIN])
        connected, _ = await communicator.connect(timeout=5)
        assert connected, "the server refused the WebSocket"
        return cls(communicator)

    @classmethod
    async def connected(cls, username: str) -> ProtocolClient:
        client = await cls.open()
        reply = await client.request("session.connect", username=username)
        assert reply["status"] == "ESTABLISHED", reply
        return client

    async def send_raw(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def _receive(self, timeout: float) -> dict[str, Any]:
        raw = await self.communicator.receive_from(timeout=timeout)
        frame = json.loads(raw)
        if "re" in frame:  # events never carry "re"
            self.replies[str(frame["re"])] = frame
        else:
            self.events.append(frame)
        return frame

    async def request(self, type: str, timeout: float = 5, **fields: Any) -> dict[str, Any]:
        request_id = f"r{next(_ids)}"
        await self.send_raw(json.dumps({"type": type, "id": request_id, **fields}))
        return await self.reply(request_id, timeout)

    async def reply(self, request_id: str, timeout: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while request_id not in self.replies:
                await self._receive(timeout)
        return self.replies.pop(request_id)

    async def next_frame(self, timeout: float = 5) -> dict[str, Any]:
        """The next frame whatever it is (for replies with ``re: null``)."""
        raw = await self.communicator.receive_from(timeout=timeout)
        return json.loads(raw)

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

    async def close(self) -> None:
        await self.communicator.disconnect()
