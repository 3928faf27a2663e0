"""Each media node's live rates (``rooms.media.traffic_rates``), as its last
heartbeat wrote them, for any web process to read.

Beside the node registry (``rooms.live.registry``) rather than in it: the
registry's heartbeat decides which nodes live, this only informs the
operator's live view. One small record per node that expires on its own
when the node stops writing it; ``RedisNodeTraffic`` for several
processes, ``MemoryNodeTraffic`` for one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from redis.asyncio import Redis

from rooms.media.timing import now_ms
from rooms.media.traffic_rates import NodeTraffic


class NodeTrafficStore(Protocol):
    async def node_traffic_put(self, traffic: NodeTraffic, *, ttl_ms: int) -> None: ...
    async def node_traffic_get(self, nodes: Sequence[str]) -> dict[str, NodeTraffic]:
        """The records of those of ``nodes`` that have one that has not expired."""
        ...


class MemoryNodeTraffic:
    def __init__(self) -> None:
        self._records: dict[str, tuple[int, NodeTraffic]] = {}

    async def node_traffic_put(self, traffic: NodeTraffic, *, ttl_ms: int) -> None:
        self._records[traffic.node] = (now_ms() + ttl_ms, traffic)

    async def node_traffic_get(self, nodes: Sequence[str]) -> dict[str, NodeTraffic]:
        current = now_ms()
        found = {}
        for node in nodes:
            expires, traffic = self._records.get(node, (0, None))
            if traffic is not None and expires > current:
                found[node] = traffic
            else:
                self._records.pop(node, None)
        return found


class RedisNodeTraffic:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, node: str) -> str:
        return f"{self._prefix}:node:{node}:traffic"

    async def node_traffic_put(self, traffic: NodeTraffic, *, ttl_ms: int) -> None:
        await self._redis.set(self._key(traffic.node), traffic.to_json(), px=ttl_ms)

    async def node_traffic_get(self, nodes: Sequence[str]) -> dict[str, NodeTraffic]:
        if not nodes:
            return {}
        values = await self._redis.mget([self._key(node) for node in nodes])
        return {node: NodeTraffic.from_json(raw) for node, raw in zip(nodes, values, strict=True) if raw}
