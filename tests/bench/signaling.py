"""Signaling benchmark: chat fan-out across two real daphne processes.

What it measures
----------------
Two daphne processes share one Redis (live state and channel layer, under a
``LIVE_STATE_PREFIX`` unique to the run) and the PostgreSQL ``test``
database. N WebSocket clients (alternately on the two processes) each open a
session and join one of M rooms, so every room has members on both
processes. After a warm-up (each client sends one unmeasured message, then
the rest of the warm-up is quiet) every client sends public ``room.message``
requests at a fixed rate R, with a random phase, for D seconds. The text of
each message carries its sender, a sequence number and ``time.time_ns()`` at
sending; every client records every ``room.message`` event it receives.

Reported: messages sent, deliveries expected (each public message goes to
every member of its room, the sender included) and received, lost and
duplicated deliveries (the same message id twice at one client), delivery
latency (receive time minus send time, over every message and recipient)
p50/p90/p99/max, messages and deliveries per second, the ``ok`` round trip
of the sender, the join phase, and per daphne process the CPU seconds per
second over the send phase (``/proc/PID/stat`` utime+stime) and RSS at its
end. The client processes report their own CPU and event loop lag: a busy
client inflates latency, so check them before blaming the server. The
script exits 1 if any delivery was lost, duplicated or unexpected, or a send
was refused, and 2 if the run itself failed.

Baseline
--------
``--compare`` measures the project's configuration ("ours": the servers as
configured, ``conference_site.asgi``) and then, under the same load with
fresh processes and a fresh Redis prefix, "stock Channels": Channels'
classic list-based ``RedisChannelLayer`` (``CHANNEL_LAYER=lists``) and
Channels' own consumer dispatch, with its thread hop per message
(``tests/bench/stock_asgi.py``). It prints both rows and the ratios
baseline/ours of latency p50 and p99 and of server CPU (both processes).
The exit status still counts only our run's losses: the baseline may lose
deliveries under overload, and the report shows how many.
``--baseline-only`` measures the baseline alone (for debugging it; exit 1 is
then never given). The runs go in that order, ours first, and the baseline
costs more CPU on a machine the clients share, so compare at a load both
can carry before reading much into the ratios.

The clients run in one client process by default. Measured against a
no-op server, a client costs about 40-50 us of CPU per frame, so 500 clients
at 1/s in rooms of 10 (about 6,000 frames/s: sends, oks and deliveries) take
about a quarter of one core, and splitting them over two processes did not
lower the latency. ``--client-procs 2`` is there for higher rates; the
report's client CPU and loop lag say when it is needed. The server, Redis,
PostgreSQL and the clients all share this machine's cores.

Run from the project root (Redis at 127.0.0.1:6379, PostgreSQL at
127.0.0.1:5432, database ``test``)::

    .venv/bin/python tests/bench/signaling.py
    .venv/bin/python tests/bench/signaling.py --clients 20 --rooms 4 --duration 5 --json
    .venv/bin/python tests/bench/signaling.py --compare --clients 40 --rooms 8 --duration 5

Flags: ``--clients`` (500), ``--rooms`` (50), ``--rate`` messages per second
per client (1), ``--duration`` seconds of sending (30), ``--warmup`` seconds
(2), ``--client-procs`` (1), ``--json``, ``--compare``, ``--baseline-only``,
``--tokens`` (ours without tokens, then ours with ``ROOM_AUTH=token``, every
client connecting with a JWT it signs itself), ``--background-load N`` (N
processes that each keep a core busy while the servers run: another
workload on the host), ``--profile DIR`` (py-spy records each server over
the send phase into DIR, raw collapsed stacks). The report's ``CPU
ms/delivery`` is both servers' CPU from the measured span's start until
every client had its deliveries, over those deliveries.
``BENCH_DATABASE_URL`` names another PostgreSQL database than ``test``.

The script starts and stops everything itself, deletes its Redis keys, and
leaves in PostgreSQL only the finalized rooms, participants and chat rows of
its own uniquely named rooms (``bench-<run>-<n>``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make tests importable
    sys.path.insert(0, str(ROOT))

# isort: split
import jwt  # noqa: E402
import redis  # noqa: E402
from websockets.asyncio.client import ClientConnection  # noqa: E402
from websockets.asyncio.client import connect as connect_async  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect as connect_sync  # noqa: E402
from websockets.typing import Origin  # noqa: E402

from tests.bench.report import percentile  # noqa: E402

PYTHON = ROOT / ".venv" / "bin" / "python"
DAPHNE = ROOT / ".venv" / "bin" / "daphne"
HOST = "127.0.0.1"
ORIGIN = Origin("http://127.0.0.1")
REDIS_URL = "redis://127.0.0.1:6379/0"
# BENCH_DATABASE_URL names another database (a machine where others use ``test``).
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
SERVERS = 2

READY_TIMEOUT_S = 30.0
MIGRATE_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 30.0
JOIN_CONCURRENCY = 25
START_MARGIN_S = 1.0
# Deliveries still missing this long after the send phase (10 s plus its duration) count as lost.
DRAIN_GRACE_S = 10.0
LAG_TICK_S = 0.02
MAX_LOG_LINES_SHOWN = 20
LOG_PROBLEM_MARKERS = (" WARNING ", " ERROR ", " CRITICAL ")  # log lines at these levels; tracebacks follow them
TEXT_TAG = "bench"
WARMUP_SEQ = -1


# --- Configuration and plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A server configuration to measure: the ASGI application daphne serves and what it adds to the environment."""

    name: str
    application: str
    env: tuple[tuple[str, str], ...] = ()
    # Clients connect with access tokens signed with this secret (ROOM_AUTH=token).
    token_secret: str = ""


OURS = Variant("ours", "conference_site.asgi:application")
STOCK = Variant("stock Channels", "tests.bench.stock_asgi:application", (("CHANNEL_LAYER", "lists"),))
TOKEN_KEY, TOKEN_SECRET = "bench", "bench-only-secret-for-signing-access-tokens"
TOKENS = Variant(
    "ours, ROOM_AUTH=token", "conference_site.asgi:application",
    (("ROOM_AUTH", "token"), ("API_KEYS", f"{TOKEN_KEY}:{TOKEN_SECRET}")), TOKEN_SECRET,
)
DEFAULT_CHANNEL_LAYER = "pubsub"  # conference_site.settings' default


@dataclass(frozen=True)
class Config:
    clients: int
    rooms: int
    rate: float
    duration: float
    warmup: float
    client_procs: int
    json: bool
    variants: tuple[Variant, ...] = (OURS,)
    # Processes that each keep one core busy during the run (another workload on the host).
    background_load: int = 0
    # Where py-spy writes a profile of each server over the send phase (none if empty).
    profile_dir: str = ""

    @property
    def messages_per_client(self) -> int:
        return int(self.duration * self.rate)


@dataclass(frozen=True)
class ClientSpec:
    index: int
    port: int
    room: int


@dataclass(frozen=True)
class WorkerPlan:
    worker: int
    run_id: str
    rate: float
    duration: float
    warmup: float
    messages_per_client: int
    clients: tuple[ClientSpec, ...]
    room_sizes: dict[int, int]
    token_secret: str = ""


def server_of(index: int) -> int:
    """Clients alternate between the processes."""
    return index % SERVERS


def room_of(index: int, rooms: int) -> int:
    """Consecutive pairs share a room, so each room has members on both processes."""
    return (index // SERVERS) % rooms


def username(index: int) -> str:
    return f"bench-{index}"


def room_name(run_id: str, room: int) -> str:
    return f"bench-{run_id}-{room}"


def make_plans(cfg: Config, ports: Sequence[int], run_id: str, token_secret: str = "") -> list[WorkerPlan]:
    specs = [ClientSpec(i, ports[server_of(i)], room_of(i, cfg.rooms)) for i in range(cfg.clients)]
    sizes: dict[int, int] = {}
    for spec in specs:
        sizes[spec.room] = sizes.get(spec.room, 0) + 1
    return [
        WorkerPlan(
            worker=w,
            run_id=run_id,
            rate=cfg.rate,
            duration=cfg.duration,
            warmup=cfg.warmup,
            messages_per_client=cfg.messages_per_client,
            clients=tuple(s for s in specs if (s.index // SERVERS) % cfg.client_procs == w),
            room_sizes=sizes,
            token_secret=token_secret,
        )
        for w in range(cfg.client_procs)
    ]


# --- Client side (runs in the client worker processes) ---------------------------------------------------------------


class Receipt(NamedTuple):
    """One measured delivery: who got which message, and how late."""

    recipient: int
    sender: int
    seq: int
    latency_ns: int


@dataclass
class JoinReport:
    worker: int
    clients: int
    seconds: float
    join_ms: list[float]


@dataclass
class WorkerResult:
    worker: int
    sent: list[tuple[int, int]] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    duplicates: int = 0
    warmup_received: int = 0
    ack_ms: list[float] = field(default_factory=list)
    send_errors: list[str] = field(default_factory=list)
    cpu_s: float = 0.0
    loop_lag_ms: list[float] = field(default_factory=list)
    drained: bool = False
    leave_failures: int = 0
    dropped: int = 0


def encode_text(sender: int, seq: int, sent_ns: int) -> str:
    return f"{TEXT_TAG} {sender} {seq} {sent_ns}"


def decode_text(text: str) -> tuple[int, int, int] | None:
    parts = text.split(" ")
    if len(parts) != 4 or parts[0] != TEXT_TAG:
        return None
    return int(parts[1]), int(parts[2]), int(parts[3])


class BenchClient:
    """One WebSocket client: requests matched by ``re``, ``room.message`` events recorded."""

    def __init__(self, spec: ClientSpec, room: str, expected: int, token_secret: str = "") -> None:
        self.spec = spec
        self.token_secret = token_secret
        self.room = room
        self.expected = expected
        self.ws: ClientConnection | None = None
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.send_ns: dict[str, int] = {}
        self.seen_ids: set[str] = set()
        self.receipts: list[Receipt] = []
        self.sent: list[tuple[int, int]] = []
        self.ack_ms: list[float] = []
        self.errors: list[str] = []
        self.duplicates = 0
        self.warmup_received = 0
        self.complete = asyncio.Event()
        self.closing = False
        self.dropped = False
        self.reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)

    async def open(self) -> None:
        self.ws = await connect_async(
            f"ws://{HOST}:{self.spec.port}/ws/rooms/",
            origin=ORIGIN,
            compression=None,
            proxy=None,
            open_timeout=REQUEST_TIMEOUT_S,
            ping_interval=None,
            close_timeout=2,
        )
        self.reader = asyncio.create_task(self._read(self.ws))

    async def _send(self, frame: dict[str, Any]) -> None:
        if self.ws is None:
            raise RuntimeError(f"client {self.spec.index} is not connected")
        await self.ws.send(json.dumps(frame))

    async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        request_id = f"r{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        await self._send({"type": kind, "id": request_id, **fields})
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            return await future

    async def join(self) -> None:
        if self.token_secret:
            reply = await self.request("session.connect", token=self.access_token())
        else:
            reply = await self.request("session.connect", username=username(self.spec.index))
        if reply.get("status") != "ESTABLISHED":
            raise RuntimeError(f"client {self.spec.index}: session.connect answered {reply}")
        reply = await self.request("room.join", room=self.room)
        if reply.get("type") != "room.state":
            raise RuntimeError(f"client {self.spec.index}: room.join answered {reply}")

    def access_token(self) -> str:
        """A token as the application around the server mints it, with a JWT library alone."""
        now = int(time.time())
        claims = {
            "iss": TOKEN_KEY, "sub": username(self.spec.index), "nbf": now, "exp": now + 3600,
            "video": {"room": self.room, "roomJoin": True},
        }
        return jwt.encode(claims, self.token_secret, algorithm="HS256")

    async def send_message(self, seq: int) -> None:
        sent_ns = time.time_ns()
        request_id = f"m{seq}"
        self.send_ns[request_id] = sent_ns
        text = encode_text(self.spec.index, seq, sent_ns)
        await self._send({"type": "room.message", "id": request_id, "room": self.room, "text": text})
        if seq != WARMUP_SEQ:
            self.sent.append((self.spec.index, seq))

    async def leave(self) -> bool:
        if self.dropped:
            return False
        try:
            reply = await self.request("room.leave", room=self.room)
        except (TimeoutError, OSError, ConnectionClosed):
            return False
        return reply.get("type") == "ok"

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                received_ns = time.time_ns()
                self._handle(json.loads(raw), received_ns)
        if not self.closing:
            # The server ended the connection: nothing more can arrive, so stop waiting for it.
            self.dropped = True
            self.complete.set()

    def _handle(self, frame: dict[str, Any], received_ns: int) -> None:
        if "re" in frame:
            self._handle_reply(frame, received_ns)
        elif frame.get("type") == "room.message":
            self._handle_message(frame["message"], received_ns)

    def _handle_reply(self, frame: dict[str, Any], received_ns: int) -> None:
        request_id = str(frame["re"])
        sent_ns = self.send_ns.pop(request_id, None)
        if sent_ns is None:
            future = self.pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result(frame)
        elif frame.get("type") == "ok":
            if request_id != f"m{WARMUP_SEQ}":
                self.ack_ms.append((received_ns - sent_ns) / 1e6)
        else:
            self.errors.append(f"{frame.get('code')}: {frame.get('message')}")

    def _handle_message(self, message: dict[str, Any], received_ns: int) -> None:
        decoded = decode_text(message["text"])
        if decoded is None:
            return
        sender, seq, sent_ns = decoded
        if message["id"] in self.seen_ids:
            self.duplicates += 1
            return
        self.seen_ids.add(message["id"])
        if seq == WARMUP_SEQ:
            self.warmup_received += 1
            return
        self.receipts.append(Receipt(self.spec.index, sender, seq, received_ns - sent_ns))
        if len(self.receipts) >= self.expected:
            self.complete.set()


async def sleep_until(target: float) -> None:
    """Sleep until the event loop's clock reads ``target``."""
    delay = target - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


def loop_time_of(wall_ns: int) -> float:
    """The event loop's clock at the wall-clock time ``wall_ns``."""
    return asyncio.get_running_loop().time() + (wall_ns - time.time_ns()) / 1e9


def cpu_seconds_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def join_all(clients: list[BenchClient]) -> list[float]:
    """Connect and join every client, a few at a time; per-client join time in ms."""
    gate = asyncio.Semaphore(JOIN_CONCURRENCY)

    async def one(client: BenchClient) -> float:
        async with gate:
            started = time.perf_counter()
            await client.open()
            await client.join()
            return (time.perf_counter() - started) * 1000

    return list(await asyncio.gather(*(one(c) for c in clients)))


async def send_schedule(client: BenchClient, plan: WorkerPlan, warmup_at: float, measure_at: float) -> None:
    """One warm-up message, then ``messages_per_client`` messages at the fixed rate with a random phase."""
    if plan.warmup > 0:
        await sleep_until(warmup_at + random.uniform(0, plan.warmup / 2))
        with contextlib.suppress(ConnectionClosed):
            await client.send_message(WARMUP_SEQ)
    period = 1 / plan.rate
    phase = random.uniform(0, period)
    for seq in range(plan.messages_per_client):
        await sleep_until(measure_at + phase + seq * period)
        if client.dropped:
            return
        with contextlib.suppress(ConnectionClosed):
            await client.send_message(seq)


async def measure_lag(until: float, lags: list[float]) -> None:
    """Record how late the event loop wakes from short sleeps (client saturation)."""
    loop = asyncio.get_running_loop()
    for _ in range(math.ceil(max(0.0, until - loop.time()) / LAG_TICK_S) + 1):
        target = loop.time() + LAG_TICK_S
        if target > until:
            return
        await asyncio.sleep(LAG_TICK_S)
        lags.append(max(0.0, loop.time() - target) * 1000)


async def receive_command(conn: Connection, within_s: float) -> tuple[str, Any]:
    ready = await asyncio.to_thread(conn.poll, within_s)
    if not ready:
        raise TimeoutError(f"no command from the benchmark process within {within_s:.0f} s")
    command: tuple[str, Any] = conn.recv()
    return command


async def run_worker(conn: Connection, plan: WorkerPlan) -> WorkerResult:
    clients = [
        BenchClient(
            spec, room_name(plan.run_id, spec.room), plan.room_sizes[spec.room] * plan.messages_per_client,
            plan.token_secret,
        )
        for spec in plan.clients
    ]
    result = WorkerResult(worker=plan.worker)
    try:
        started = time.perf_counter()
        join_ms = await join_all(clients)
        conn.send(("joined", JoinReport(plan.worker, len(clients), time.perf_counter() - started, join_ms)))
        command, start_ns = await receive_command(conn, join_timeout(sum(plan.room_sizes.values())))
        if command != "start":
            raise RuntimeError(f"unexpected command {command!r}")
        warmup_at = loop_time_of(start_ns)
        measure_at = warmup_at + plan.warmup
        end_at = measure_at + plan.duration
        lag_task = asyncio.create_task(measure_lag(end_at, result.loop_lag_ms))
        senders = [asyncio.create_task(send_schedule(c, plan, warmup_at, measure_at)) for c in clients]
        await sleep_until(measure_at)
        cpu_before = cpu_seconds_self()
        await sleep_until(end_at)
        result.cpu_s = cpu_seconds_self() - cpu_before
        async with asyncio.timeout(drain_timeout(plan.duration)):
            await asyncio.gather(*senders, lag_task)
        result.drained = await drain(clients, drain_timeout(plan.duration))
        conn.send(("drained", result.drained))  # the servers' CPU up to here counts
        leaves = await asyncio.gather(*(c.leave() for c in clients))
        result.leave_failures = leaves.count(False)
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    for client in clients:
        result.sent.extend(client.sent)
        result.receipts.extend(client.receipts)
        result.duplicates += client.duplicates
        result.warmup_received += client.warmup_received
        result.dropped += client.dropped
        result.ack_ms.extend(client.ack_ms)
        result.send_errors.extend(client.errors)
    return result


def drain_timeout(duration: float) -> float:
    return DRAIN_GRACE_S + duration


async def drain(clients: list[BenchClient], within_s: float) -> bool:
    """Wait, bounded, until every client has had all the deliveries it expects."""
    try:
        async with asyncio.timeout(within_s):
            await asyncio.gather(*(c.complete.wait() for c in clients))
    except TimeoutError:
        return False
    return True


def worker_main(conn: Connection, plan: WorkerPlan) -> None:
    """Entry point of a client process: report ``joined``, wait for ``start``, report ``result``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark process handles Ctrl-C
    try:
        conn.send(("result", asyncio.run(run_worker(conn, plan))))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


# --- Server processes ------------------------------------------------------------------------------------------------


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def server_env(cfg: Config, variant: Variant, prefix: str, var_dir: Path) -> dict[str, str]:
    per_room = math.ceil(cfg.clients / cfg.rooms)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "conference_site.settings",
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": DATABASE_URL,
        "LIVE_STATE_PREFIX": prefix,
        # Nothing here should reach the broker; if something did, it stays in this process.
        "CELERY_BROKER_URL": "memory://",
        "ALLOWED_HOSTS": HOST,
        "VAR_DIR": str(var_dir),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CHAT_RATE_PER_SECOND": str(max(1000.0, cfg.rate * 100)),
        "CHAT_RATE_BURST": str(max(1000, int(cfg.rate * 100))),
        "ROOM_MAX_PARTICIPANTS": str(max(16, per_room + 1)),
        # Every benchmark client connects from 127.0.0.1.
        "CONNECTIONS_PER_IP": "0",
        "JOINS_PER_IP_PER_SECOND": "0",
        "ROOMS_MAX": "0",
        "LOG_LEVEL": "INFO",
        "ROOM_AUTH": "open",
        **dict(variant.env),
    }


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(PYTHON), "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py migrate failed:\n{done.stdout}\n{done.stderr}")


def start_server(port: int, application: str, env: dict[str, str], log_dir: Path) -> Server:
    log = log_dir / f"daphne-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(DAPHNE), "-b", HOST, "-p", str(port), application],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches only this script, which stops the servers in order
        )
    return Server(port, process, log)


def wait_ready(server: Server) -> None:
    """Poll until the server answers a protocol ``ping`` over a WebSocket."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"daphne on port {server.port} exited:\n{log_tail(server.log)}")
        try:
            with connect_sync(
                f"ws://{HOST}:{server.port}/ws/rooms/",
                origin=ORIGIN,
                proxy=None,
                open_timeout=2,
                close_timeout=1,
            ) as ws:
                ws.send(json.dumps({"type": "ping", "id": "ready"}))
                if json.loads(ws.recv(timeout=5)).get("type") == "pong":
                    return
        except (OSError, TimeoutError, ValueError) as error:
            last_error = error
            time.sleep(0.1)
    raise RuntimeError(f"daphne on port {server.port} not ready in {READY_TIMEOUT_S:.0f} s: {last_error}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(STOP_TIMEOUT_S)


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def log_problems(servers: Sequence[Server]) -> list[str]:
    problems: list[str] = []
    for server in servers:
        for line in server.log.read_text(errors="replace").splitlines():
            if any(marker in line for marker in LOG_PROBLEM_MARKERS):
                problems.append(f"[{server.port}] {line}")
    return problems


def delete_redis_keys(prefix: str) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.delete(*batch))
                batch = []
        if batch:
            deleted += int(client.delete(*batch))
    finally:
        client.close()
    return deleted


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- Orchestration ---------------------------------------------------------------------------------------------------


@dataclass
class Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection


def join_timeout(clients: int) -> float:
    return 60.0 + 0.2 * clients


def start_workers(plans: Sequence[WorkerPlan]) -> list[Worker]:
    context = multiprocessing.get_context("spawn")
    workers = []
    for plan in plans:
        parent_end, child_end = context.Pipe()
        process = context.Process(target=worker_main, args=(child_end, plan), name=f"bench-client-{plan.worker}")
        process.start()
        child_end.close()
        workers.append(Worker(process, parent_end))
    return workers


def collect(workers: Sequence[Worker], kind: str, timeout: float) -> list[Any]:
    """One ``kind`` message from every worker, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    results: dict[int, Any] = {}
    while len(results) < len(workers):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"client processes did not report {kind!r} within {timeout:.0f} s")
        waiting = [w.conn for i, w in enumerate(workers) if i not in results]
        for conn in wait(waiting, remaining):
            assert isinstance(conn, Connection)
            index = next(i for i, w in enumerate(workers) if w.conn is conn)
            try:
                message_kind, payload = conn.recv()
            except EOFError:
                raise RuntimeError(f"client process {index} died") from None
            if message_kind == "error":
                raise RuntimeError(f"client process {index} failed:\n{payload}")
            if message_kind != kind:
                raise RuntimeError(f"client process {index} sent {message_kind!r}, expected {kind!r}")
            results[index] = payload
    return [results[i] for i in range(len(workers))]


def stop_workers(workers: Sequence[Worker], grace_s: float) -> None:
    """Let finished workers exit within ``grace_s``, terminate the rest."""
    for worker in workers:
        worker.process.join(grace_s)
        if worker.process.is_alive():
            worker.process.terminate()
            worker.process.join(STOP_TIMEOUT_S)
        worker.conn.close()


def sleep_until_wall(wall_ns: int) -> None:
    delay = (wall_ns - time.time_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


@dataclass
class Measurement:
    joins: list[JoinReport]
    results: list[WorkerResult]
    servers: list[dict[str, float]]
    join_phase_s: float


def measure(cfg: Config, servers: Sequence[Server], run_id: str, token_secret: str = "") -> Measurement:
    plans = make_plans(cfg, [s.port for s in servers], run_id, token_secret)
    workers = start_workers(plans)
    finished = False
    try:
        join_started = time.perf_counter()
        joins: list[JoinReport] = collect(workers, "joined", join_timeout(cfg.clients))
        join_phase_s = time.perf_counter() - join_started
        progress(f"{cfg.clients} clients joined {cfg.rooms} rooms in {join_phase_s:.1f} s; sending")
        start_ns = time.time_ns() + int(START_MARGIN_S * 1e9)
        for worker in workers:
            worker.conn.send(("start", start_ns))
        measure_ns = start_ns + int(cfg.warmup * 1e9)
        sleep_until_wall(measure_ns)
        profilers = start_profilers(cfg, servers, run_id)
        before, measured_from = [process_cpu_seconds(s.process.pid) for s in servers], time.monotonic()
        sleep_until_wall(measure_ns + int(cfg.duration * 1e9))
        after, elapsed = [process_cpu_seconds(s.process.pid) for s in servers], time.monotonic() - measured_from
        stop_profilers(profilers)
        stats = [
            {"port": s.port, "cpu_s_per_s": (a - b) / elapsed, "rss_mib": process_rss_mib(s.process.pid)}
            for s, b, a in zip(servers, before, after, strict=True)
        ]
        progress("send phase over; draining and leaving")
        collect(workers, "drained", 2 * drain_timeout(cfg.duration))
        drained = [process_cpu_seconds(s.process.pid) for s in servers]
        for stat, b, d in zip(stats, before, drained, strict=True):
            stat["cpu_s_to_drained"] = d - b
        results: list[WorkerResult] = collect(
            workers, "result", 2 * drain_timeout(cfg.duration) + 2 * REQUEST_TIMEOUT_S
        )
        finished = True
    finally:
        stop_workers(workers, STOP_TIMEOUT_S if finished else 0.0)
    return Measurement(joins, results, stats, join_phase_s)


def spin() -> None:
    """Keep one core busy until terminated."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        pass


def start_background_load(count: int) -> list[multiprocessing.process.BaseProcess]:
    context = multiprocessing.get_context("spawn")
    spinners: list[multiprocessing.process.BaseProcess] = [
        context.Process(target=spin, name=f"bench-load-{i}", daemon=True) for i in range(count)
    ]
    for spinner in spinners:
        spinner.start()
    return spinners


def stop_background_load(spinners: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for spinner in spinners:
        spinner.terminate()
        spinner.join(STOP_TIMEOUT_S)


def start_profilers(cfg: Config, servers: Sequence[Server], run_id: str) -> list[subprocess.Popen[bytes]]:
    """py-spy on each server for the send phase (``--profile DIR``): collapsed stacks, one file per server."""
    if not cfg.profile_dir:
        return []
    out = Path(cfg.profile_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--format", "raw", "--rate", "200", "--nonblocking",
             "--duration", str(math.ceil(cfg.duration)), "--pid", str(s.process.pid),
             "--output", str(out / f"{run_id}-{s.port}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        for s in servers
    ]


def stop_profilers(profilers: Sequence[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        try:
            profiler.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            profiler.terminate()
            profiler.wait(STOP_TIMEOUT_S)


def run(cfg: Config, variant: Variant) -> dict[str, Any]:
    """One measurement of ``variant`` with its own daphne processes, Redis prefix and rooms."""
    run_id = secrets.token_hex(5)
    prefix = f"bench-{run_id}"
    work_dir = Path(tempfile.mkdtemp(prefix="signaling-bench-"))
    env = server_env(cfg, variant, prefix, work_dir)
    channel_layer = env.get("CHANNEL_LAYER") or DEFAULT_CHANNEL_LAYER
    servers: list[Server] = []
    spinners: list[multiprocessing.process.BaseProcess] = []
    succeeded = False
    try:
        progress(f"{variant.name} run {run_id} ({variant.application}, CHANNEL_LAYER={channel_layer}): migrating")
        migrate(env)
        for port in free_ports(SERVERS):
            servers.append(start_server(port, variant.application, env, work_dir))
        for server in servers:
            wait_ready(server)
        progress(f"daphne ready on ports {', '.join(str(s.port) for s in servers)}")
        spinners = start_background_load(cfg.background_load)
        report = {
            "config": variant.name,
            "application": variant.application,
            "channel_layer": channel_layer,
            **summarize(cfg, measure(cfg, servers, run_id, variant.token_secret)),
        }
        succeeded = True
    finally:
        stop_background_load(spinners)
        for server in servers:
            stop_server(server)
        try:
            progress(f"deleted {delete_redis_keys(prefix)} Redis keys under {prefix}:")
        except redis.RedisError as error:
            progress(f"could not delete the Redis keys under {prefix}: ({error}); delete them by hand")
        problems = log_problems(servers)
        for line in problems[:MAX_LOG_LINES_SHOWN]:
            progress(f"server log: {line}")
        if problems or not succeeded:
            progress(f"server logs kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    report["server_log_problems"] = len(problems)
    return report


# --- Report ----------------------------------------------------------------------------------------------------------


def expected_pairs(
    sent: Sequence[tuple[int, int]], members: dict[int, list[int]], rooms: int
) -> Iterator[tuple[int, int, int]]:
    for sender, seq in sent:
        for recipient in members[room_of(sender, rooms)]:
            yield recipient, sender, seq


def summarize(cfg: Config, m: Measurement) -> dict[str, Any]:
    members: dict[int, list[int]] = {}
    for index in range(cfg.clients):
        members.setdefault(room_of(index, cfg.rooms), []).append(index)
    sent = [pair for r in m.results for pair in r.sent]
    receipts = [receipt for r in m.results for receipt in r.receipts]
    expected = set(expected_pairs(sent, members, cfg.rooms))
    received = {(x.recipient, x.sender, x.seq) for x in receipts}
    latencies = sorted(x.latency_ns / 1e6 for x in receipts)
    acks = sorted(a for r in m.results for a in r.ack_ms)
    join_ms = sorted(j for report in m.joins for j in report.join_ms)
    errors = [e for r in m.results for e in r.send_errors]
    return {
        "clients": cfg.clients,
        "rooms": cfg.rooms,
        "rate": cfg.rate,
        "duration_s": cfg.duration,
        "warmup_s": cfg.warmup,
        "client_procs": cfg.client_procs,
        "messages_planned": cfg.clients * cfg.messages_per_client,
        "messages_sent": len(sent),
        "send_errors": len(errors),
        "send_error_samples": sorted(set(errors))[:5],
        "deliveries_expected": len(expected),
        "deliveries_received": len(receipts),
        "lost": len(expected - received),
        "duplicated": sum(r.duplicates for r in m.results),
        "unexpected": len(received - expected) + (len(receipts) - len(received)),
        "dropped_connections": sum(r.dropped for r in m.results),
        "latency_ms": {q: round(percentile(latencies, v), 2) for q, v in (("p50", 50), ("p90", 90), ("p99", 99))}
        | {"max": round(latencies[-1], 2) if latencies else 0.0},
        "ack_ms": {"p50": round(percentile(acks, 50), 2), "p99": round(percentile(acks, 99), 2)},
        "messages_per_s": round(len(sent) / cfg.duration, 1),
        "deliveries_per_s": round(len(receipts) / cfg.duration, 1),
        "join": {
            "phase_s": round(m.join_phase_s, 2),
            "p50_ms": round(percentile(join_ms, 50), 1),
            "p99_ms": round(percentile(join_ms, 99), 1),
            "max_ms": round(join_ms[-1], 1) if join_ms else 0.0,
        },
        "servers": [{k: round(v, 3) for k, v in s.items()} for s in m.servers],
        # Both processes' CPU from the measured span's start until every
        # client had its deliveries, over those deliveries: the cost of one
        # delivery, also when an overloaded server delivers late.
        "cpu_ms_per_delivery": round(1000 * sum(s["cpu_s_to_drained"] for s in m.servers) / len(receipts), 4)
        if receipts else 0.0,
        "background_load": cfg.background_load,
        "client_processes": [
            {
                "clients": j.clients,
                "cpu_s_per_s": round(r.cpu_s / cfg.duration, 3),
                "loop_lag_p99_ms": round(percentile(sorted(r.loop_lag_ms), 99), 1),
                "loop_lag_max_ms": round(max(r.loop_lag_ms, default=0.0), 1),
                "drained": r.drained,
                "leave_failures": r.leave_failures,
            }
            for j, r in zip(m.joins, m.results, strict=True)
        ],
        "warmup_deliveries": sum(r.warmup_received for r in m.results),
    }


def markdown(reports: Sequence[dict[str, Any]]) -> str:
    """One table row per configuration, then their details and, for two, the ratios baseline/ours."""
    header = (
        "| config | clients | rooms | rate/s | duration s | sent | expected | received | lost | dup | p50 ms | p90 ms "
        "| p99 ms | max ms | msg/s | deliveries/s | server CPU s/s | CPU ms/delivery | server RSS MiB |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    details: list[str] = []
    for report in reports:
        lat, servers = report["latency_ms"], report["servers"]
        cpu = " / ".join(f"{s['cpu_s_per_s']:.2f}" for s in servers)
        rss = " / ".join(f"{s['rss_mib']:.0f}" for s in servers)
        lines.append(
            f"| {report['config']} | {report['clients']} | {report['rooms']} | {report['rate']:g} "
            f"| {report['duration_s']:g} | {report['messages_sent']} | {report['deliveries_expected']} "
            f"| {report['deliveries_received']} | {report['lost']} | {report['duplicated']} | {lat['p50']} "
            f"| {lat['p90']} | {lat['p99']} | {lat['max']} | {report['messages_per_s']} | {report['deliveries_per_s']} "
            f"| {cpu} | {report['cpu_ms_per_delivery']} | {rss} |"
        )
        join, acks = report["join"], report["ack_ms"]
        clients = "; ".join(
            f"{c['clients']} clients: CPU {c['cpu_s_per_s']:.2f} s/s, loop lag p99 {c['loop_lag_p99_ms']} ms "
            f"max {c['loop_lag_max_ms']} ms"
            for c in report["client_processes"]
        )
        label = f"{report['config']}: " if len(reports) > 1 else ""
        details += [
            f"- {label}{report['application']}, CHANNEL_LAYER={report['channel_layer']}; join phase "
            f"{join['phase_s']} s (per client p50 {join['p50_ms']} ms, p99 {join['p99_ms']} ms, "
            f"max {join['max_ms']} ms); sender ok round trip p50 {acks['p50']} ms, p99 {acks['p99']} ms",
            f"- {label}messages planned {report['messages_planned']}, send errors {report['send_errors']} "
            f"{report['send_error_samples']}, unexpected deliveries {report['unexpected']}, "
            f"connections dropped by the server {report['dropped_connections']}, "
            f"server log problems {report['server_log_problems']}, "
            f"background load {report['background_load']} busy processes",
            f"- {label}client processes: {clients}",
        ]
    lines += ["", *details]
    if len(reports) == 2:
        ours, baseline = reports
        r = ratios(ours, baseline)
        lines.append(
            f"- {baseline['config']} / {ours['config']}: latency p50 {times(r['latency_p50'])}, "
            f"p99 {times(r['latency_p99'])}, server CPU s/s (both processes) {times(r['server_cpu_s_per_s'])}; "
            f"lost/dup {ours['config']} {ours['lost']}/{ours['duplicated']}, "
            f"{baseline['config']} {baseline['lost']}/{baseline['duplicated']}"
        )
    return "\n".join(lines)


def ratio(baseline: float, ours: float) -> float | None:
    return round(baseline / ours, 2) if ours > 0 else None


def times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}x"


def server_cpu(report: dict[str, Any]) -> float:
    return float(sum(s["cpu_s_per_s"] for s in report["servers"]))


def ratios(ours: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    """Baseline divided by ours: above 1 means the baseline is slower or costlier."""
    return {
        "latency_p50": ratio(baseline["latency_ms"]["p50"], ours["latency_ms"]["p50"]),
        "latency_p99": ratio(baseline["latency_ms"]["p99"], ours["latency_ms"]["p99"]),
        "server_cpu_s_per_s": ratio(server_cpu(baseline), server_cpu(ours)),
    }


def as_json(reports: Sequence[dict[str, Any]]) -> str:
    """A single run's report as it is; for a comparison both reports and the ratios."""
    if len(reports) == 1:
        return json.dumps(reports[0], indent=2)
    ours, baseline = reports
    return json.dumps({"ours": ours, "baseline": baseline, "ratios": ratios(ours, baseline)}, indent=2)


# --- Entry point -----------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=500, help="WebSocket clients (default 500)")
    parser.add_argument("--rooms", type=int, default=50, help="rooms the clients are spread over (default 50)")
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second per client (default 1)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of sending (default 30)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds between joining and sending (default 2)")
    parser.add_argument("--client-procs", type=int, default=1, help="client processes (default 1)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--background-load", type=int, default=0, metavar="N",
        help="N processes each keeping a core busy while the servers run (default 0)",
    )
    parser.add_argument("--profile", default="", metavar="DIR", help="py-spy each server over the send phase into DIR")
    variants = parser.add_mutually_exclusive_group()
    variants.add_argument(
        "--compare",
        action="store_true",
        help="measure ours, then stock Channels (CHANNEL_LAYER=lists, Channels' dispatch) under the same load",
    )
    variants.add_argument("--baseline-only", action="store_true", help="measure only stock Channels (debugging)")
    variants.add_argument(
        "--tokens", action="store_true",
        help="measure ours without tokens, then ours with ROOM_AUTH=token (every client connects with a JWT)",
    )
    args = parser.parse_args(argv)
    chosen: tuple[Variant, ...] = (OURS,)
    if args.compare:
        chosen = (OURS, STOCK)
    elif args.baseline_only:
        chosen = (STOCK,)
    elif args.tokens:
        chosen = (OURS, TOKENS)
    cfg = Config(
        args.clients, args.rooms, args.rate, args.duration, args.warmup, args.client_procs, args.json, chosen,
        args.background_load, args.profile,
    )
    if cfg.clients < 1 or cfg.rooms < 1 or cfg.rooms > cfg.clients or cfg.client_procs < 1:
        parser.error("need clients >= rooms >= 1 and client-procs >= 1")
    if cfg.background_load < 0:
        parser.error("need background-load >= 0")
    if cfg.rate <= 0 or cfg.warmup < 0 or cfg.messages_per_client < 1:
        parser.error("need rate > 0, warmup >= 0 and duration * rate >= 1")
    return cfg


def failed(report: dict[str, Any]) -> bool:
    return any(report[key] for key in ("lost", "duplicated", "unexpected", "send_errors", "dropped_connections"))


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C so the servers are stopped and the keys deleted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    reports: list[dict[str, Any]] = []
    for variant in cfg.variants:
        try:
            reports.append(run(cfg, variant))
        except Exception as error:
            print(f"benchmark failed ({variant.name}): {error}", file=sys.stderr)
            if reports:
                print(as_json(reports) if cfg.json else markdown(reports))
            return 2
    print(as_json(reports) if cfg.json else markdown(reports))
    # Only our run decides: the baseline may lose deliveries under overload, and its row shows them.
    return 1 if any(failed(r) for r in reports if r["config"] == OURS.name) else 0


if __name__ == "__main__":
    sys.exit(main())
