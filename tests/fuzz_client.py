"""A protocol client for fuzzing: it reads every frame in the background and
keeps what the invariants need (replies by ``re``, the room membership it
has been told about, the chat messages it received)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from tests.wsclient import ORIGIN


class FuzzClient:
    def __init__(self, socket: Any, name: str, label: str) -> None:
        self.socket = socket
        self.name = name
        self.label = label
        self.replies: dict[str | None, list[dict[str, Any]]] = {}
        # room -> the other participants this client has been told about
        self.view: dict[str, set[str]] = {}
        self.chat: Counter[str] = Counter()
        self.frames: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.closed = False
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, url: str, name: str, label: str) -> FuzzClient:
        from websockets.asyncio.client import connect

        socket = await connect(url, origin=ORIGIN, open_timeout=5)  # type: ignore[arg-type]
        return cls(socket, name, label)

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for text in self.socket:
                frame = json.loads(text)
                self.frames.append(frame)
                self._apply(frame)
                self.changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self.changed.set()

    def _apply(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if "re" in frame:
            self.replies.setdefault(frame["re"], []).append(frame)
            if kind == "room.state":
                self.view[frame["room"]] = {p["name"] for p in frame["participants"]}
            return
        room = frame.get("room")
        if kind == "room.joined" and room in self.view:
            self.view[room].add(frame["participant"]["name"])
        elif kind == "room.left" and room in self.view:
            self.view[room].discard(frame["participant"]["name"])
        elif kind == "room.message":
            self.chat[frame["message"]["id"]] += 1

    def forget(self, room: str) -> None:
        self.view.pop(room, None)

    async def send_raw(self, text: str) -> None:
        await self.socket.send(text)

    async def reply(self, re: str | None, timeout: float = 10) -> dict[str, Any]:
        """The next reply carrying ``re`` (``None``: a reply to a frame without a valid id)."""
        async with asyncio.timeout(timeout):
            while not self.replies.get(re):
                assert not self.closed, f"{self.label} closed while waiting for a reply to {re!r}"
                self.changed.clear()
                await self.changed.wait()
        return self.replies[re].pop(0)

    async def request(self, request_id: str, type: str, **fields: Any) -> dict[str, Any]:
        await self.send_raw(json.dumps({"type": type, "id": request_id, **fields}, ensure_ascii=False))
        return await self.reply(request_id)

    async def wait_until(self, predicate: Any, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        await self.socket.close()
        await self.reader
