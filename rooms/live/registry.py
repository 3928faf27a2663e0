"""Which streams are live, where, and which media node serves each room.

Like the live state: ``RedisStreamRegistry`` for several processes (each
decision one Lua script from ``lua/``), ``MemoryStreamRegistry`` for one
process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis

from rooms.live.redis import decoded, lua_source


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
    async def room_node(self, room: str, candidate: str, *, alive_after_ms: int) -> str: ...
    async def room_node_release(self, room: str) -> None: ...

    async def node_heartbeat(self, node: str, now_ms: int) -> None: ...
    async def nodes_alive(self, *, alive_after_ms: int) -> list[str]: ...
    async def nodes_claim_dead(self, *, dead_before_ms: int, now_ms: int) -> list[str]: ...
    async def node_streams(self, node: str) -> list[StreamRecord]: ...
    async def node_forget(self, node: str) -> None: ...


class MemoryStreamRegistry:
    def __init__(self) -> None:
        self._streams: dict[str, StreamRecord] = {}
        self._room_nodes: dict[str, str] = {}
        self._heartbeats: dict[str, int] = {}

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

    async def room_node(self, room: str, candidate: str, *, alive_after_ms: int) -> str:
        current = self._room_nodes.get(room)
        if current is None or self._heartbeats.get(current, 0) < alive_after_ms:
            current = self._room_nodes[room] = candidate
        return current

    async def room_node_release(self, room: str) -> None:
        self._room_nodes.pop(room, None)

    async def node_heartbeat(self, node: str, now_ms: int) -> None:
        self._heartbeats[node] = now_ms

    async def nodes_alive(self, *, alive_after_ms: int) -> list[str]:
        return [node for node, beat in self._heartbeats.items() if beat >= alive_after_ms]

    async def nodes_claim_dead(self, *, dead_before_ms: int, now_ms: int) -> list[str]:
        dead = [node for node, beat in self._heartbeats.items() if beat < dead_before_ms]
        for node in dead:
            self._heartbeats[node] = now_ms
        return dead

    async def node_streams(self, node: str) -> list[StreamRecord]:
        return [record for record in self._streams.values() if record.node == node]

    async def node_forget(self, node: str) -> None:
        self._heartbeats.pop(node, None)
        for room, pinned in list(self._room_nodes.items()):
            if pinned == node:
                del self._room_nodes[room]


# Read once per process; each client registers them.
_ADD = lua_source("stream_add")
_REMOVE = lua_source("stream_remove")
_PIN = lua_source("room_node_pin")
_CLAIM_NODE = lua_source("claim_node")


class RedisStreamRegistry:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._add = self._redis.register_script(_ADD)
        self._remove = self._redis.register_script(_REMOVE)
        self._pin = self._redis.register_script(_PIN)
        self._claim_node = self._redis.register_script(_CLAIM_NODE)

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    def _stream_keys(self, record: StreamRecord) -> list[str]:
        return [
            self._key("room", record.room, "stream-slots"),
            self._key("room", record.room, "streams"),
            self._key("stream", record.stream_id),
            self._key("node", record.node, "streams"),
        ]

    async def stream_add(self, record: StreamRecord) -> bool:
        keys = self._stream_keys(record)
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
        slot = f"{record.participant}\x00{record.kind}"
        raw = await self._remove(keys=self._stream_keys(record), args=[stream_id, slot])
        return StreamRecord.from_json(raw) if raw else None

    async def room_streams(self, room: str) -> list[StreamRecord]:
        raw = await self._redis.hgetall(self._key("room", room, "streams"))
        return [StreamRecord.from_json(value) for value in raw.values()]

    async def room_node(self, room: str, candidate: str, *, alive_after_ms: int) -> str:
        keys = [self._key("room", room, "node"), self._key("nodes")]
        node = await self._pin(keys=keys, args=[candidate, alive_after_ms])
        return node.decode() if isinstance(node, bytes) else str(node)

    async def room_node_release(self, room: str) -> None:
        await self._redis.delete(self._key("room", room, "node"))

    async def node_heartbeat(self, node: str, now_ms: int) -> None:
        await self._redis.zadd(self._key("nodes"), {node: now_ms})

    async def nodes_alive(self, *, alive_after_ms: int) -> list[str]:
        return [decoded(node) for node in await self._redis.zrangebyscore(self._key("nodes"), alive_after_ms, "+inf")]

    async def nodes_claim_dead(self, *, dead_before_ms: int, now_ms: int) -> list[str]:
        key = self._key("nodes")
        claimed = []
        for raw in await self._redis.zrangebyscore(key, "-inf", f"({dead_before_ms}"):
            node = decoded(raw)
            if await self._claim_node(keys=[key], args=[node, dead_before_ms, now_ms]):
                claimed.append(node)
        return claimed

    async def node_streams(self, node: str) -> list[StreamRecord]:
        records = []
        for raw in await self._redis.smembers(self._key("node", node, "streams")):
            record = await self.stream_get(decoded(raw))
            if record is not None:
                records.append(record)
        return records

    async def node_forget(self, node: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._key("nodes"), node)
            pipe.delete(self._key("node", node, "streams"))
            await pipe.execute()
