"""Placement benchmark: how long placing a new room on a media node takes,
and how evenly a burst of new rooms spreads.

What it measures
----------------
For each backend of the node registry (``memory``: the embedded default's
dicts; ``redis``: the Lua script ``rooms/live/lua/room_node_place.lua`` on
the Redis at ``--redis``, under a prefix of the run's own, deleted at the
end) and each node count (``--nodes``, default 2, 10, 50):

- **latency**: ``--rooms`` new rooms placed one after another by one
  client, each timed with ``perf_counter_ns`` around the registry call (a
  Redis round trip included); p50 / p99 in µs. The nodes heartbeat
  random loads first (0 to 40 legs, 0 to 0.3 of a core), so the script scores
  every node as in production.
- **throughput**: the same number of rooms placed by ``--clients``
  concurrent clients (each its own Redis connection; one event loop),
  placements per second.
- **spread, equal nodes**: idle nodes, a burst of ``20 x nodes`` rooms from
  the concurrent clients with no heartbeat in between: rooms per node,
  max - min (exact: 0).
- **spread, unequal nodes**: nodes with the random loads above, the same
  burst: each node's placement score after it (its load plus the rooms it
  took), max - min over the nodes that took any room, and whether every
  node that took none was already above that level (water-filling:
  at most ``NEW_ROOM_LEGS`` apart).

Baseline
--------
The placement before this one, in the same run: a random live node
(``nodes_alive`` then ``random.choice``), pinned with a Lua SET-if-dead
script (two round trips), which knows nothing of load. Its latency and its
spread under the same bursts.

Run from the project root (Redis at 127.0.0.1:6379)::

    .venv/bin/python tests/bench/placement.py
    .venv/bin/python tests/bench/placement.py --nodes 2 10 --rooms 2000 --clients 8

Prints Markdown on stdout (progress on stderr) and ends with a Targets
section; exits 1 if a target fails.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make rooms and tests importable
    sys.path.insert(0, str(ROOT))

# isort: split
from redis.asyncio import Redis  # noqa: E402

from rooms.live.placement import NEW_ROOM_LEGS, load_score  # noqa: E402
from rooms.live.redis import redis_client  # noqa: E402
from rooms.live.registry import MemoryStreamRegistry, RedisStreamRegistry, StreamRegistry  # noqa: E402
from rooms.media.messages import LoadReport  # noqa: E402
from tests.bench.report import Target, exit_status, fmt, log, percentile, targets_markdown  # noqa: E402
from tests.processes import RedisServer, free_port, redis_keys_delete  # noqa: E402

# The pin before load-aware placement (rooms/live/lua/room_node_pin.lua, removed).
_RANDOM_PIN = """
local current = redis.call('GET', KEYS[1])
if current then
  local beat = redis.call('ZSCORE', KEYS[2], current)
  if beat and tonumber(beat) >= tonumber(ARGV[2]) then return current end
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

NOW_MS = 1_000_000
ALIVE_AFTER_MS = NOW_MS - 5_000

Place = Callable[[str], Awaitable[str | None]]


@dataclass
class Backend:
    """One registry on one backend, as ``clients`` processes would see it."""

    name: str
    registries: list[StreamRegistry]
    redis_clients: list[Redis]
    prefix: str

    async def close(self, redis_url: str) -> None:
        for client in self.redis_clients:
            await client.aclose()
        if self.redis_clients:
            redis_keys_delete(redis_url, self.prefix)


def backend_open(name: str, clients: int, redis_url: str) -> Backend:
    prefix = f"bench-placement-{uuid.uuid4().hex[:10]}"
    if name == "memory":
        registry = MemoryStreamRegistry()
        return Backend(name, [registry] * clients, [], prefix)
    redis = [redis_client(redis_url) for _ in range(clients)]
    return Backend(name, [RedisStreamRegistry(client, prefix) for client in redis], redis, prefix)


def placer(backend: Backend, index: int, method: str) -> Place:
    """Place a room through client ``index``: ``ours`` or the random ``baseline``."""
    registry = backend.registries[index]
    if method == "ours":
        return lambda room: registry.room_node_place(room, alive_after_ms=ALIVE_AFTER_MS)
    if backend.name == "memory":
        pins: dict[str, str] = {}

        async def random_memory(room: str) -> str | None:
            alive = await registry.nodes_alive(alive_after_ms=ALIVE_AFTER_MS)
            return pins.setdefault(room, random.choice(alive))

        return random_memory
    client = backend.redis_clients[index]
    script = client.register_script(_RANDOM_PIN)

    async def random_redis(room: str) -> str | None:
        alive = await registry.nodes_alive(alive_after_ms=ALIVE_AFTER_MS)
        keys = [f"{backend.prefix}:room:{room}:node", f"{backend.prefix}:nodes"]
        node = await script(keys=keys, args=[random.choice(alive), ALIVE_AFTER_MS])
        return node.decode() if isinstance(node, bytes) else str(node)

    return random_redis


def random_loads(nodes: int, seed: int) -> dict[str, LoadReport]:
    # The reports serve no rooms: none is pinned to them in the run's
    # registry, and a heartbeat's served rooms are taken to be pinned ones.
    rng = random.Random(seed)
    loads = {}
    for index in range(nodes):
        node = f"node-{index:03d}"
        published = rng.randint(0, 10)
        loads[node] = LoadReport(
            node=node, published=published, played=rng.randint(0, 30), at_ms=NOW_MS,
            cpu=round(rng.uniform(0, 0.3), 3),
        )
    return loads


async def heartbeat(backend: Backend, loads: dict[str, LoadReport]) -> None:
    for node, load in loads.items():
        await backend.registries[0].node_heartbeat(node, NOW_MS, load)


async def latency(place: Place, rooms: int, tag: str) -> list[float]:
    took = []
    for index in range(rooms):
        start = time.perf_counter_ns()
        node = await place(f"{tag}-{index}")
        took.append((time.perf_counter_ns() - start) / 1000)
        assert node is not None
    return took


async def burst(places: list[Place], rooms: int, tag: str) -> tuple[list[str], float]:
    """Place ``rooms`` new rooms: the clients at once, each one room after another."""

    async def client(index: int) -> list[str | None]:
        place = places[index]
        return [await place(f"{tag}-{room}") for room in range(index, rooms, len(places))]

    start = time.perf_counter()
    placed = [node for nodes in await asyncio.gather(*map(client, range(len(places)))) for node in nodes]
    elapsed = time.perf_counter() - start
    assert all(node is not None for node in placed)
    return [str(node) for node in placed], elapsed


async def server_usec(backend: Backend) -> float:
    """Redis's own time in every command since its stats were last reset (0 for memory)."""
    if not backend.redis_clients:
        return 0.0
    stats = await backend.redis_clients[0].info("commandstats")
    return float(sum(stat["usec"] for name, stat in stats.items() if name not in ("cmdstat_info", "cmdstat_config")))


async def server_reset(backend: Backend) -> None:
    if backend.redis_clients:
        await backend.redis_clients[0].config_resetstat()


@dataclass
class Row:
    backend: str
    method: str
    nodes: int
    p50_us: float
    p99_us: float
    server_us: float
    per_second: float
    equal_spread: int
    unequal_spread: float
    filled: bool


async def measure(name: str, method: str, nodes: int, *, rooms: int, clients: int, redis_url: str) -> Row:
    log(f"{name} {method}: {nodes} nodes")
    loads = random_loads(nodes, seed=nodes)

    backend = backend_open(name, clients, redis_url)
    try:
        await heartbeat(backend, loads)
        await server_reset(backend)
        took = await latency(placer(backend, 0, method), rooms, "seq")
        server = await server_usec(backend) / rooms
        _, elapsed = await burst([placer(backend, i, method) for i in range(clients)], rooms, "conc")
    finally:
        await backend.close(redis_url)

    backend = backend_open(name, clients, redis_url)
    try:
        await heartbeat(backend, {node: LoadReport(node=node, published=0, played=0, at_ms=NOW_MS) for node in loads})
        placed, _ = await burst([placer(backend, i, method) for i in range(clients)], 20 * nodes, "equal")
        counts = Counter(placed)
        equal_spread = max(counts.get(node, 0) for node in loads) - min(counts.get(node, 0) for node in loads)
    finally:
        await backend.close(redis_url)

    backend = backend_open(name, clients, redis_url)
    try:
        await heartbeat(backend, loads)
        placed, _ = await burst([placer(backend, i, method) for i in range(clients)], 20 * nodes, "unequal")
        counts = Counter(placed)
        after = {node: load_score(load) + NEW_ROOM_LEGS * counts.get(node, 0) for node, load in loads.items()}
        took_any = [after[node] for node in loads if counts.get(node)]
        level = max(took_any)
        unequal_spread = level - min(took_any)
        # A node that took no room was already at or above the level the others filled to.
        filled = all(after[node] >= level - NEW_ROOM_LEGS for node in loads if not counts.get(node))
    finally:
        await backend.close(redis_url)

    return Row(name, method, nodes, percentile(took, 50), percentile(took, 99), server, rooms / elapsed, equal_spread,
               unequal_spread, filled)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[2, 10, 50])
    parser.add_argument("--rooms", type=int, default=2000, help="placements per latency and throughput run")
    parser.add_argument("--clients", type=int, default=4, help="concurrent placing clients in bursts")
    parser.add_argument("--redis", default="",
                        help="a Redis URL to use; default: a redis-server of the run's own (its stats are the run's)")
    parser.add_argument("--backends", nargs="+", default=["memory", "redis"])
    options = parser.parse_args()
    own: RedisServer | None = None
    if not options.redis and "redis" in options.backends:
        directory = tempfile.mkdtemp(prefix="bench-placement-")
        own = RedisServer(free_port(), Path(directory)).start()
        options.redis = own.url
    try:
        return report(options)
    finally:
        if own is not None:
            own.kill()
            shutil.rmtree(own.directory, ignore_errors=True)


def report(options: argparse.Namespace) -> int:

    async def run() -> list[Row]:
        rows = []
        for name in options.backends:
            for nodes in options.nodes:
                for method in ("ours", "baseline"):
                    rows.append(await measure(name, method, nodes, rooms=options.rooms, clients=options.clients,
                                              redis_url=options.redis))
        return rows

    rows = asyncio.run(run())
    print(f"{options.rooms} placements per run, {options.clients} concurrent clients in bursts\n")
    print("| backend | placement | nodes | µs p50 | µs p99 | Redis µs per placement | placements/s (concurrent) "
          "| equal nodes: rooms max - min | unequal nodes: score max - min | filled lowest first |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        server = fmt(row.server_us, 1) if row.backend == "redis" else "-"
        print(f"| {row.backend} | {'least loaded' if row.method == 'ours' else 'random (before)'} | {row.nodes} "
              f"| {fmt(row.p50_us, 1)} | {fmt(row.p99_us, 1)} | {server} | {row.per_second:,.0f} | {row.equal_spread} "
              f"| {fmt(row.unequal_spread, 1)} | {'yes' if row.filled else 'no'} |")
    ours = [row for row in rows if row.method == "ours"]
    redis_p50 = max((row.p50_us for row in ours if row.backend == "redis"), default=None)
    targets = [
        Target("a burst over equal nodes spreads exactly (max - min = 0 rooms)",
               str(max(row.equal_spread for row in ours)), all(row.equal_spread == 0 for row in ours),
               [f"{row.backend}/{row.nodes}" for row in ours if row.equal_spread]),
        Target(f"a burst over unequal nodes fills the lowest first (scores within {NEW_ROOM_LEGS} legs)",
               fmt(max(row.unequal_spread for row in ours), 1),
               all(row.filled and row.unequal_spread <= NEW_ROOM_LEGS for row in ours),
               [f"{row.backend}/{row.nodes}" for row in ours if not row.filled or row.unequal_spread > NEW_ROOM_LEGS]),
        Target("Redis placement p50 ≤ 1000 µs at every node count (one round trip; a publish's ICE takes 100x that)",
               fmt(redis_p50, 1), None if redis_p50 is None else redis_p50 <= 1000,
               [f"{row.nodes} nodes" for row in ours if row.backend == "redis" and row.p50_us > 1000]),
    ]
    print()
    print("\n".join(targets_markdown(targets)))
    return exit_status(run_failed=False, results=targets)


if __name__ == "__main__":
    sys.exit(main())
