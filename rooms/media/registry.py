"""Which streams are live, where, and which media node serves each room.

Like ``rooms.state``: ``RedisStreamRegistry`` for several processes (each
decision one atomic script), ``MemoryStreamRegistry`` for one process.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings


@dataclass(frozen=True)
class StreamRecord:
    stream_id: str
    room: str
    participant: str
    kind: str
    node: str
    publisher_channel: str
    # The protocol's Stream object as clients see it.
    payload: dict[str, Any] = field(hash=False)

    def to_json(self) -> str:
        return json.dumps(
            {
                "stream_id": self.stream_id, "room": self.room, "participant": self.participant, "kind": self.kind,
                "node": self.node, "publisher_channel": self.publisher_channel, "payload": self.payload,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> StreamRecord:
        return cls(**json.loads(raw))


class StreamRegistry(Protocol):
    async def stream_add(self, record: StreamRecord) -> bool: ...
    async def stream_get(self, stream_id: str) -> StreamRecord | None: ...
    async def stream_update(self, record: StreamRecord) -> None: ...
    async def stream_remove(self, stream_id: str) -> StreamRecord | None: ...
    async def room_streams(self, room: str) -> list[StreamRecord]: ...
    async def room_node(self, room: str, candidate: str) -> str: ...
    async def room_node_release(self, room: str) -> None: ...


class MemoryStreamRegistry:
    def __init__(self) -> None:
        self._streams: dict[str, StreamRecord] = {}
        self._nodes: dict[str, str] = {}

    async def stream_add(self, record: StreamRecord) -> bool:
        for other in self._streams.values():
            if (other.room, other.participant, other.kind) == (record.room, record.participant, record.kind):
                return False
        self._streams[record.stream_id] = record
        return True

    async def stream_get(self, stream_id: str) -> StreamRecord | None:
        return self._streams.get(stream_id)

    async def stream_update(self, record: StreamRecord) -> None:
        if record.stream_id in self._streams:
            self._streams[record.stream_id] = record

    async def stream_remove(self, stream_id: str) -> StreamRecord | None:
        return self._streams.pop(stream_id, None)

    async def room_streams(self, room: str) -> list[StreamRecord]:
        return [record for record in self._streams.values() if record.room == room]

    async def room_node(self, room: str, candidate: str) -> str:
        return self._nodes.setdefault(room, candidate)

    async def room_node_release(self, room: str) -> None:
        self._nodes.pop(room, None)


_ADD = """
local slot = KEYS[3]
if redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SET', slot, ARGV[2])
return 1
"""

_REMOVE = """
local raw = redis.call('GET', KEYS[3])
if not raw then return false end
redis.call('DEL', KEYS[3])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[2])
return raw
"""


class RedisStreamRegistry:
    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import BlockingConnectionPool, Redis

        self._redis = Redis(connection_pool=BlockingConnectionPool.from_url(url, max_connections=32, timeout=20))
        self._prefix = prefix
        self._add = self._redis.register_script(_ADD)
        self._remove = self._redis.register_script(_REMOVE)

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    async def stream_add(self, record: StreamRecord) -> bool:
        keys = [
            self._key("room", record.room, "stream-slots"),
            self._key("room", record.room, "streams"),
            self._key("stream", record.stream_id),
        ]
        slot = f"{record.participant}\x00{record.kind}"
        return bool(await self._add(keys=keys, args=[record.stream_id, record.to_json(), slot]))

    async def stream_get(self, stream_id: str) -> StreamRecord | None:
        raw = await self._redis.get(self._key("stream", stream_id))
        return StreamRecord.from_json(raw) if raw else None

    async def stream_update(self, record: StreamRecord) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key("stream", record.stream_id), record.to_json(), xx=True)
            pipe.hset(self._key("room", record.room, "streams"), record.stream_id, record.to_json())
            await pipe.execute()

    async def stream_remove(self, stream_id: str) -> StreamRecord | None:
        record = await self.stream_get(stream_id)
        if record is None:
            return None
        keys = [
            self._key("room", record.room, "stream-slots"),
            self._key("room", record.room, "streams"),
            self._key("stream", stream_id),
        ]
        slot = f"{record.participant}\x00{record.kind}"
        raw = await self._remove(keys=keys, args=[stream_id, slot])
        return StreamRecord.from_json(raw) if raw else None

    async def room_streams(self, room: str) -> list[StreamRecord]:
        raw = await self._redis.hgetall(self._key("room", room, "streams"))
        return [StreamRecord.from_json(value) for value in raw.values()]

    async def room_node(self, room: str, candidate: str) -> str:
        key = self._key("room", room, "node")
        await self._redis.set(key, candidate, nx=True)
        node = await self._redis.get(key)
        return node.decode() if isinstance(node, bytes) else str(node)

    async def room_node_release(self, room: str) -> None:
        await self._redis.delete(self._key("room", room, "node"))


_memory_registry: MemoryStreamRegistry | None = None
_redis_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisStreamRegistry] = (
    weakref.WeakKeyDictionary()
)


def get_stream_registry() -> StreamRegistry:
    global _memory_registry
    if not settings.REDIS_URL:
        if _memory_registry is None:
            _memory_registry = MemoryStreamRegistry()
        return _memory_registry
    loop = asyncio.get_running_loop()
    registry = _redis_registries.get(loop)
    if registry is None:
        registry = _redis_registries[loop] = RedisStreamRegistry(settings.REDIS_URL, settings.LIVE_STATE_PREFIX)
    return registry


def reset_stream_registry() -> None:
    global _memory_registry
    _memory_registry = None
