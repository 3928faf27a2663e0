"""Which streams are live, where, and which media node serves each room.

Like the live state: ``RedisStreamRegistry`` for several processes (each
decision one Lua script from ``lua/``), ``MemoryStreamRegistry`` for one
process.

Nodes heartbeat their load here. A new room goes to the live node with the
lowest placement score (``rooms.live.placement``) that is not draining, and
is counted on it in the same step, so web processes placing rooms at once
spread them. A draining node takes no new room; the rooms pinned to it stay
until they end (``room_node_release``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis

from rooms.live.placement import NEW_ROOM_LEGS, load_score, node_score
from rooms.live.redis import decoded, lua_source
from rooms.media.messages import LoadReport


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


@dataclass(frozen=True)
class NodeStatus:
    """A registered node as the registry knows it."""

    node: str
    beat_ms: int
    # Its last heartbeat's load; None before its first (or after it stopped).
    load: LoadReport | None
    draining: bool
    # The rooms pinned to it.
    rooms: frozenset[str]
    streams: int

    @property
    def score(self) -> float:
        """Its placement score: what a new room's placement compares."""
        return node_score(self.load, pinned_rooms=len(self.rooms))

    def alive(self, *, alive_after_ms: int) -> bool:
        return self.beat_ms >= alive_after_ms


class StreamRegistry(Protocol):
    async def stream_add(self, record: StreamRecord) -> bool: ...
    async def stream_get(self, stream_id: str) -> StreamRecord | None: ...
    async def stream_update(self, record: StreamRecord) -> None: ...
    async def stream_remove(self, stream_id: str) -> StreamRecord | None: ...
    async def room_streams(self, room: str) -> list[StreamRecord]: ...
    async def room_node_place(self, room: str, *, alive_after_ms: int) -> str | None:
        """The room's node: the pinned one while it lives, else the best
        live, non-draining one, pinned now; None when there is none."""
        ...
    async def room_node_release(self, room: str) -> None: ...

    async def node_heartbeat(self, node: str, now_ms: int, load: LoadReport | None = None) -> None: ...
    async def node_drain(self, node: str, *, draining: bool) -> bool:
        """Set or clear ``node``'s draining flag; False if no such node is registered."""
        ...
    async def nodes_status(self) -> list[NodeStatus]: ...
    async def nodes_alive(self, *, alive_after_ms: int) -> list[str]: ...
    async def nodes_claim_dead(self, *, dead_before_ms: int, now_ms: int) -> list[str]: ...
    async def node_streams(self, node: str) -> list[StreamRecord]: ...
    async def node_forget(self, node: str) -> None: ...


class MemoryStreamRegistry:
    def __init__(self) -> None:
        self._streams: dict[str, StreamRecord] = {}
        self._room_nodes: dict[str, str] = {}
        # The same pins by node.
        self._node_rooms: dict[str, set[str]] = {}
        self._heartbeats: dict[str, int] = {}
        self._loads: dict[str, LoadReport] = {}
        self._draining: set[str] = set()

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

    def _unpin(self, room: str) -> None:
        node = self._room_nodes.pop(room, None)
        if node is not None:
            self._node_rooms.get(node, set()).discard(room)

    async def room_node_place(self, room: str, *, alive_after_ms: int) -> str | None:
        current = self._room_nodes.get(room)
        if current is not None and self._heartbeats.get(current, 0) >= alive_after_ms:
            return current
        self._unpin(room)
        best: tuple[float, str] | None = None
        for node, beat in self._heartbeats.items():
            if beat < alive_after_ms or node in self._draining:
                continue
            score = node_score(self._loads.get(node), pinned_rooms=len(self._node_rooms.get(node, ())))
            if best is None or (score, node) < best:
                best = (score, node)
        if best is None:
            return None
        self._room_nodes[room] = best[1]
        self._node_rooms.setdefault(best[1], set()).add(room)
        return best[1]

    async def room_node_release(self, room: str) -> None:
        self._unpin(room)

    async def node_heartbeat(self, node: str, now_ms: int, load: LoadReport | None = None) -> None:
        self._heartbeats[node] = now_ms
        if load is not None:
            self._loads[node] = load

    async def node_drain(self, node: str, *, draining: bool) -> bool:
        if node not in self._heartbeats:
            return False
        if draining:
            self._draining.add(node)
        else:
            self._draining.discard(node)
        return True

    async def nodes_status(self) -> list[NodeStatus]:
        return [
            NodeStatus(
                node=node, beat_ms=beat, load=self._loads.get(node), draining=node in self._draining,
                rooms=frozenset(self._node_rooms.get(node, ())),
                streams=sum(1 for record in self._streams.values() if record.node == node),
            )
            for node, beat in sorted(self._heartbeats.items())
        ]

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
        self._loads.pop(node, None)
        self._draining.discard(node)
        for room in self._node_rooms.pop(node, set()):
            self._room_nodes.pop(room, None)


# Read once per process; each client registers them.
_ADD = lua_source("stream_add")
_REMOVE = lua_source("stream_remove")
_PLACE = lua_source("room_node_place")
_RELEASE = lua_source("room_node_release")
_DRAIN = lua_source("node_drain")
_CLAIM_NODE = lua_source("claim_node")


class RedisStreamRegistry:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._add = self._redis.register_script(_ADD)
        self._remove = self._redis.register_script(_REMOVE)
        self._place = self._redis.register_script(_PLACE)
        self._release = self._redis.register_script(_RELEASE)
        self._drain = self._redis.register_script(_DRAIN)
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

    async def room_node_place(self, room: str, *, alive_after_ms: int) -> str | None:
        keys = [self._key("room", room, "node"), self._key("nodes")]
        node = await self._place(keys=keys, args=[alive_after_ms, self._prefix, room, NEW_ROOM_LEGS])
        return decoded(node) if node else None

    async def room_node_release(self, room: str) -> None:
        await self._release(keys=[self._key("room", room, "node")], args=[self._prefix, room])

    async def node_heartbeat(self, node: str, now_ms: int, load: LoadReport | None = None) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self._key("nodes"), {node: now_ms})
            if load is not None:
                pipe.hset(self._key("node", node, "load"), mapping={
                    "score": repr(load_score(load)), "rooms": load.rooms, "report": load.model_dump_json(),
                })
            await pipe.execute()

    async def node_drain(self, node: str, *, draining: bool) -> bool:
        keys = [self._key("nodes"), self._key("node", node, "load")]
        return bool(await self._drain(keys=keys, args=[node, "1" if draining else "0"]))

    async def nodes_status(self) -> list[NodeStatus]:
        statuses = []
        beats: list[Any] = await self._redis.zrange(self._key("nodes"), 0, -1, withscores=True)
        for raw_node, beat in beats:
            node = decoded(raw_node)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(self._key("node", node, "load"))
                pipe.smembers(self._key("node", node, "rooms"))
                pipe.scard(self._key("node", node, "streams"))
                fields, rooms, streams = await pipe.execute()
            load = {decoded(key): decoded(value) for key, value in fields.items()}
            report = LoadReport.model_validate_json(load["report"]) if load.get("report") else None
            statuses.append(NodeStatus(
                node=node, beat_ms=int(beat), load=report, draining=load.get("draining") == "1",
                rooms=frozenset(decoded(room) for room in rooms), streams=int(streams),
            ))
        return sorted(statuses, key=lambda status: status.node)

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
            pipe.delete(
                self._key("node", node, "streams"), self._key("node", node, "load"), self._key("node", node, "rooms")
            )
            await pipe.execute()
