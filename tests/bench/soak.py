"""Soak: many people joining, chatting, leaving and dropping for a long time.

What it runs
------------
The deployment shape of docs/architecture.md, all real processes on
127.0.0.1: two daphne processes (``conference_site.asgi:application``), one
separate media node (``manage.py runmedianode``, ``MEDIA_NODES=external``),
one Celery worker with beat, Redis (127.0.0.1:6379 under a fresh key
prefix) and a PostgreSQL database made for the run.

``--clients`` people (200) each loop until the end: open a WebSocket to
one of the two processes, ``session.connect``, join one of the rooms (one
room per ~8 people), stay 4-15 s sending a public chat message every 1-4 s,
then leave with ``room.leave`` or drop the socket without a word (a third
of the visits). ``--publishers`` pairs (2) churn media beside them: a
presenter joins, publishes a 320x240 camera from aiortc, a viewer joins and
plays it for 8-15 s (its decoded frames are counted), then both go.

What it reports
---------------
- RSS per process, sampled every 5 s, and its least-squares slope after
  the warm-up (the first fifth of the run), in MiB per 10 minutes;
- open file descriptors per process after the warm-up and at the end;
- Redis keys under the run's prefix before the first client and at the end;
- ghosts at the end, once everyone is gone and the idle window has passed:
  Participant rows without ``left_at``, rooms not finalized, streams
  without ``ended_at``;
- chat: every message a person sent while others were in the room must
  reach each of them exactly once (those who had joined before it was sent
  and stayed until 3 s after its acknowledgement; later arrivals are late, and
  their latency is reported): lost, duplicated,
  delivered to a room it was not sent to;
- requests never answered, refusals, and media plays whose frames did not
  advance.

Targets: RSS slope ≤ 1 MiB per 10 min per process (judged only for runs of
20 min or more: shorter runs are dominated by warm-up), keys and descriptors
back to baseline, zero ghosts, zero lost or duplicated messages, every
request answered, every play advancing. Exit status 1 if a target is missed,
2 if the run failed.

Run from the project root::

    .venv/bin/python tests/bench/soak.py --duration 1800          # the record
    .venv/bin/python tests/bench/soak.py --duration 120 --json    # what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make tests importable
    sys.path.insert(0, str(ROOT))

from tests.bench.report import Target, exit_status, fmt, log, percentile, targets_markdown  # noqa: E402
from tests.processes import ServerProcess, celery_worker, daphne, manage, media_node, redis_keys_delete  # noqa: E402

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
ORIGIN = "http://127.0.0.1"
PEOPLE_PER_ROOM = 8
REQUEST_TIMEOUT_S = 10.0
# A message counts as due to a member who stayed this long after its
# acknowledgement: later than that it is late (the latencies are reported),
# not lost; a member that leaves stops getting the room's messages.
DELIVERY_GRACE_S = 3.0
SAMPLE_INTERVAL_S = 5.0
RSS_SLOPE_TARGET_MIB_PER_10MIN = 1.0
RSS_SLOPE_MIN_DURATION_S = 1200
FD_TOLERANCE = 4
IDLE_TIMEOUT_MS = 3000  # short, so the end state is reached soon after the churn
MIN_WATCH_HALF_S = 2.0


# ---------------------------------------------------------------- bookkeeping


@dataclass
class Visit:
    person: str
    room: str
    joined_at: float
    left_at: float = float("inf")
    received: list[str] = field(default_factory=list)
    arrivals: dict[str, float] = field(default_factory=dict)
    cut_short: bool = False  # the server ended the session: nothing is due to it after


@dataclass
class Sent:
    text: str
    room: str
    sent_at: float
    acked_at: float


@dataclass
class Ledger:
    visits: list[Visit] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    unanswered: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    refusal_examples: list[str] = field(default_factory=list)
    disconnects: Counter[str] = field(default_factory=Counter)  # DISCONNECTED reasons the server gave
    silent_closes: int = 0  # sockets the server closed without a DISCONNECTED
    lost_examples: list[str] = field(default_factory=list)
    wrong_room: int = 0
    plays: int = 0
    stalled_plays: int = 0
    media_errors: Counter[str] = field(default_factory=Counter)


@dataclass
class Sample:
    at: float
    rss_kib: int
    fds: int


# ---------------------------------------------------------------- one socket


class Connection:
    """One WebSocket: replies matched by ``re``, chat kept per visit."""

    _ids = itertools.count(1)

    def __init__(self, socket: Any, ledger: Ledger) -> None:
        self.socket = socket
        self.ledger = ledger
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.visit: Visit | None = None
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closing = False
        self.told_disconnected = False
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, url: str, ledger: Ledger) -> Connection:
        from websockets.asyncio.client import connect

        return cls(await connect(url, origin=ORIGIN, open_timeout=REQUEST_TIMEOUT_S), ledger)  # type: ignore[arg-type]

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for text in self.socket:
                frame = json.loads(text)
                reply_to = frame.get("re")
                if reply_to is not None and reply_to in self.waiting:
                    self.waiting.pop(reply_to).set_result(frame)
                elif frame.get("type") == "room.message":
                    self._chat(frame)
                elif frame.get("type") == "session.status" and frame.get("status") == "DISCONNECTED":
                    self.ledger.disconnects[str(frame.get("reason"))] += 1
                    self.told_disconnected = True
                    self._cut_short()
                else:
                    self.events.put_nowait(frame)
        if not self.closing:
            # The server closed the socket: said why (DISCONNECTED) or not.
            if not self.told_disconnected:
                self.ledger.silent_closes += 1
            self._cut_short()

    def _cut_short(self) -> None:
        if self.visit is not None:
            self.visit.cut_short = True
            self.visit.left_at = min(self.visit.left_at, time.monotonic())

    def _chat(self, frame: dict[str, Any]) -> None:
        if self.visit is None:
            return
        if frame.get("room") != self.visit.room:
            self.ledger.wrong_room += 1
            return
        text = frame["message"]["text"]
        self.visit.received.append(text)
        self.visit.arrivals.setdefault(text, time.monotonic())

    async def request(self, type: str, **fields: Any) -> dict[str, Any] | None:
        request_id = f"s{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = future
        try:
            await self.socket.send(json.dumps({"type": type, "id": request_id, **fields}, ensure_ascii=False))
            return await asyncio.wait_for(future, REQUEST_TIMEOUT_S)
        except TimeoutError:
            self.ledger.unanswered += 1
            return None
        except Exception:  # the socket went away: the person starts over
            return None
        finally:
            self.waiting.pop(request_id, None)

    async def close(self) -> None:
        self.closing = True
        self.reader.cancel()
        with contextlib.suppress(Exception):
            await self.socket.close()


def refused(ledger: Ledger, reply: dict[str, Any] | None, expected: str, request: str) -> bool:
    if reply is None:
        return True
    if reply.get("type") != expected:
        ledger.refusals[str(reply.get("code") or reply.get("reason") or reply.get("type"))] += 1
        if len(ledger.refusal_examples) < 10:
            ledger.refusal_examples.append(f"{request}: {json.dumps(reply)[:200]}")
        return True
    return False


# ---------------------------------------------------------------- people


async def person(index: int, urls: list[str], rooms: list[str], ledger: Ledger, until: float) -> None:
    rng = random.Random(index)
    name = f"p{index}"
    while time.monotonic() < until:
        try:
            connection = await Connection.open(rng.choice(urls), ledger)
        except Exception:
            ledger.refusals["connect"] += 1
            await asyncio.sleep(1)
            continue
        try:
            await visit(connection, name, rng, rooms, ledger, until)
        finally:
            await connection.close()
        await asyncio.sleep(rng.uniform(0.2, 1.5))


async def visit(
    connection: Connection, name: str, rng: random.Random, rooms: list[str], ledger: Ledger, until: float
) -> None:
    if refused(ledger, await connection.request("session.connect", username=name), "session.status", "connect"):
        return
    room = rng.choice(rooms)
    reply = await connection.request("room.join", room=room)
    if refused(ledger, reply, "room.state", "join"):
        return
    current = Visit(name, room, time.monotonic())
    connection.visit = current
    ledger.visits.append(current)
    stay_until = min(until, time.monotonic() + rng.uniform(4, 15))
    while time.monotonic() < stay_until and not current.cut_short:
        await asyncio.sleep(rng.uniform(1, 4))
        text = f"{name} {uuid.uuid4().hex[:10]}"
        sent_at = time.monotonic()
        reply = await connection.request("room.message", room=room, text=text)
        if not refused(ledger, reply, "ok", "chat"):
            ledger.sent.append(Sent(text, room, sent_at, time.monotonic()))
    current.left_at = min(current.left_at, time.monotonic())
    if rng.random() < 0.66:
        await connection.request("room.leave", room=room)


async def media_pair(index: int, urls: list[str], ledger: Ledger, until: float) -> None:
    """A presenter publishes, a viewer plays; both leave; again."""
    from aiortc import RTCSessionDescription

    from rooms.media.peer import use_host_address
    from tests.media_clients import loopback_peer, new_player
    from tests.media_tracks import CounterVideoTrack

    use_host_address("127.0.0.1")  # the clients' media stays on loopback too
    rng = random.Random(10_000 + index)
    room = f"media-{index}"
    while until - time.monotonic() > 2 * MIN_WATCH_HALF_S + 2:
        presenter = viewer = None
        publisher_pc = player = None
        try:
            presenter = await Connection.open(urls[0], ledger)
            viewer = await Connection.open(urls[1], ledger)
            await presenter.request("session.connect", username=f"presenter{index}")
            await viewer.request("session.connect", username=f"viewer{index}")
            joined = [await connection.request("room.join", room=room) for connection in (presenter, viewer)]
            if any(refused(ledger, reply, "room.state", "media join") for reply in joined):
                continue
            publisher_pc = loopback_peer()
            publisher_pc.addTransceiver(CounterVideoTrack(320, 240), direction="sendonly")
            await publisher_pc.setLocalDescription(await publisher_pc.createOffer())
            answer = await presenter.request(
                "stream.publish", room=room, kind="camera", sdp=publisher_pc.localDescription.sdp
            )
            if refused(ledger, answer, "stream.answer", "publish"):
                continue
            assert answer is not None
            await publisher_pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            player = await new_player()
            played = await viewer.request(
                "stream.play", stream=answer["stream"]["id"], sdp=player.pc.localDescription.sdp
            )
            if refused(ledger, played, "stream.answer", "play"):
                continue
            assert played is not None
            await player.pc.setRemoteDescription(RTCSessionDescription(played["sdp"], "answer"))
            ledger.plays += 1
            half_s = max(MIN_WATCH_HALF_S, min(rng.uniform(8, 15), until - time.monotonic()) / 2)
            await asyncio.sleep(half_s)
            halfway = len(player.counters)
            await asyncio.sleep(half_s)
            if len(player.counters) <= halfway or halfway == 0:
                ledger.stalled_plays += 1
        except Exception as error:  # counted, the run goes on
            ledger.media_errors[type(error).__name__] += 1
        finally:
            if player is not None:
                for task in player.tasks:
                    task.cancel()
            for pc in (player.pc if player else None, publisher_pc):
                if pc is not None:
                    await pc.close()
            for connection in (viewer, presenter):
                if connection is not None:
                    await connection.close()


# ---------------------------------------------------------------- measuring


def process_sample(pid: int) -> Sample:
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return Sample(time.monotonic(), rss_kib, len(os.listdir(f"/proc/{pid}/fd")))


def slope_mib_per_10min(samples: list[Sample]) -> float:
    if len(samples) < 3:
        return 0.0
    xs = [sample.at for sample in samples]
    ys = [sample.rss_kib / 1024 for sample in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread * 600


def redis_keys(prefix: str) -> set[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return {key.decode() for key in client.scan_iter(f"{prefix}:*", count=1000)}
    finally:
        client.close()


def descriptor_kinds(pid: int) -> dict[str, int]:
    """Open descriptors by kind (socket, pipe, anon_inode:..., or the file's directory)."""
    kinds: Counter[str] = Counter()
    folder = Path(f"/proc/{pid}/fd")
    for entry in folder.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(entry)
            kinds[target.split(":", 1)[0] if ":" in target else str(Path(target).parent)] += 1
    return dict(kinds)


def database_ghosts(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as connection:
        return {
            "participants without left_at": connection.execute(
                "SELECT count(*) FROM rooms_participant WHERE left_at IS NULL").fetchone()[0],  # type: ignore[index]
            "rooms not finalized": connection.execute(
                "SELECT count(*) FROM rooms_room WHERE status <> 'FINALIZED'").fetchone()[0],  # type: ignore[index]
            "streams without ended_at": connection.execute(
                "SELECT count(*) FROM rooms_stream WHERE ended_at IS NULL").fetchone()[0],  # type: ignore[index]
        }


def chat_accounting(ledger: Ledger) -> dict[str, Any]:
    by_room: dict[str, list[Visit]] = defaultdict(list)
    for member in ledger.visits:
        by_room[member.room].append(member)
    received = [Counter(member.received) for member in ledger.visits]
    index_of = {id(member): number for number, member in enumerate(ledger.visits)}
    due = lost = 0
    for message in ledger.sent:
        sender = message.text.split(" ", 1)[0]
        for member in by_room[message.room]:
            if member.person == sender or member.cut_short:
                continue
            if member.joined_at < message.sent_at and member.left_at > message.acked_at + DELIVERY_GRACE_S:
                due += 1
                if received[index_of[id(member)]][message.text] == 0:
                    lost += 1
                    if len(ledger.lost_examples) < 5:
                        ledger.lost_examples.append(
                            f"{message.text!r} in {message.room} sent {message.sent_at:.3f}"
                            f" acked {message.acked_at:.3f}"
                            f" not at {member.person} (joined {member.joined_at:.3f}, left {member.left_at:.3f},"
                            f" {len(member.received)} received)"
                        )
    duplicated = sum(count - 1 for counts in received for count in counts.values() if count > 1)
    sent_at = {message.text: message.sent_at for message in ledger.sent}
    latencies = [arrived - sent_at[text] for member in ledger.visits for text, arrived in member.arrivals.items()
                 if text in sent_at]
    return {"sent": len(ledger.sent), "deliveries due": due, "lost": lost, "duplicated": duplicated,
            "to a wrong room": ledger.wrong_room, "delivered": len(latencies),
            "latency_ms": {"p50": percentile(latencies, 50) * 1000, "p99": percentile(latencies, 99) * 1000,
                           "max": max(latencies, default=0.0) * 1000}}


# ---------------------------------------------------------------- the run


@dataclass
class Deployment:
    processes: dict[str, ServerProcess]
    database_url: str
    prefix: str
    folder: Path


def server_env(database_url: str, prefix: str, folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "LIVE_STATE_PREFIX": prefix,
        "VAR_DIR": str(folder / "var"),
        "MEDIA_NODES": "external",
        "MEDIA_HOST_IP": "127.0.0.1",
        "ROOM_AUTH": "open",
        "DEBUG": "false",
        "SECRET_KEY": "soak-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ROOM_IDLE_TIMEOUT_MS": str(IDLE_TIMEOUT_MS),
        # Every client of the soak comes from 127.0.0.1: the per-address
        # limits are meant for the internet, not for one load generator.
        "CONNECTIONS_PER_IP": "10000",
        "JOINS_PER_IP_PER_SECOND": "0",
        "PYTHONUNBUFFERED": "1",
    }


def deploy(folder: Path) -> Deployment:
    import psycopg

    name = f"conference_soak_{os.getpid()}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    database_url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    prefix = f"soak-{uuid.uuid4().hex[:12]}"
    env = server_env(database_url, prefix, folder)
    manage(env, "migrate", "--noinput")
    processes: dict[str, ServerProcess] = {}
    processes["media node"] = media_node("media-node", env, folder).start()
    processes["media node"].wait_for_log("media node ready")
    processes["web 1"] = daphne("web-1", env, folder).start()
    processes["web 2"] = daphne("web-2", env, folder).start()
    processes["worker"] = celery_worker("worker", env, folder, beat=True).start()
    processes["worker"].wait_for_log("ready")
    return Deployment(processes, database_url, prefix, folder)


def teardown(deployment: Deployment) -> None:
    import psycopg

    for process in deployment.processes.values():
        process.stop()
    redis_keys_delete(REDIS_URL, deployment.prefix)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {deployment.database_url.rsplit('/', 1)[1]} WITH (FORCE)")


async def sample_loop(deployment: Deployment, samples: dict[str, list[Sample]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for name, process in deployment.processes.items():
            assert process.process is not None
            with contextlib.suppress(FileNotFoundError):
                samples[name].append(process_sample(process.process.pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_INTERVAL_S)


async def quiesce(deployment: Deployment, baseline_keys: set[str], timeout_s: float) -> float:
    """Wait until every room is finalized and the keys are back (or the timeout); return the wait."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        ghosts = await asyncio.to_thread(database_ghosts, deployment.database_url)
        keys = await asyncio.to_thread(redis_keys, deployment.prefix)
        if not any(ghosts.values()) and keys <= baseline_keys:
            break
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def drive(args: argparse.Namespace, deployment: Deployment) -> dict[str, Any]:
    urls = [deployment.processes["web 1"].ws_url, deployment.processes["web 2"].ws_url]
    rooms = [f"soak-{number}" for number in range(max(1, args.clients // PEOPLE_PER_ROOM))]
    samples: dict[str, list[Sample]] = defaultdict(list)
    ledger = Ledger()
    # The keys a process makes on its first session (its registry entries)
    # live as long as it does: the baseline is taken after one session each.
    for url in urls:
        warmup = await Connection.open(url, ledger)
        await warmup.request("session.connect", username="warmup")
        await warmup.close()
    baseline_keys = await asyncio.to_thread(redis_keys, deployment.prefix)
    stop_sampling = asyncio.Event()
    sampler = asyncio.ensure_future(sample_loop(deployment, samples, stop_sampling))
    started = time.monotonic()
    until = started + args.duration
    log(f"soak: {args.clients} people in {len(rooms)} rooms, {args.publishers} media pairs, {args.duration:.0f} s")
    tasks = [asyncio.ensure_future(person(index, urls, rooms, ledger, until)) for index in range(args.clients)]
    tasks += [asyncio.ensure_future(media_pair(index, urls, ledger, until)) for index in range(args.publishers)]
    for task in asyncio.as_completed(tasks):
        await task
    churn_s = time.monotonic() - started
    log(f"soak: churn over after {churn_s:.0f} s; waiting for the idle window")
    settle_s = await quiesce(deployment, baseline_keys, timeout_s=max(30.0, IDLE_TIMEOUT_MS / 1000 * 5))
    stop_sampling.set()
    await sampler
    final = {name: process_sample(process.process.pid) for name, process in deployment.processes.items()
             if process.process is not None}
    end_keys = await asyncio.to_thread(redis_keys, deployment.prefix)
    descriptors = {name: descriptor_kinds(process.process.pid) for name, process in deployment.processes.items()
                   if process.process is not None}
    warm = started + args.duration / 5
    processes = {}
    for name, series in samples.items():
        after_warmup = [sample for sample in series if sample.at >= warm] or series
        processes[name] = {
            "rss_start_mib": after_warmup[0].rss_kib / 1024,
            "rss_end_mib": final[name].rss_kib / 1024,
            "rss_peak_mib": max(sample.rss_kib for sample in series) / 1024,
            "rss_slope_mib_per_10min": slope_mib_per_10min(
                [sample for sample in after_warmup if sample.at <= started + churn_s]),
            "fds_after_warmup": after_warmup[0].fds,
            "fds_end": final[name].fds,
            "fds_end_by_kind": descriptors.get(name, {}),
        }
    return {
        "clients": args.clients, "rooms": len(rooms), "media_pairs": args.publishers,
        "duration_s": churn_s, "settle_s": settle_s,
        "visits": len(ledger.visits), "chat": chat_accounting(ledger),
        "unanswered": ledger.unanswered, "refusals": dict(ledger.refusals),
        "refusal_examples": ledger.refusal_examples,
        "disconnects": dict(ledger.disconnects), "silent_closes": ledger.silent_closes,
        "lost_examples": ledger.lost_examples,
        "plays": ledger.plays, "stalled_plays": ledger.stalled_plays, "media_errors": dict(ledger.media_errors),
        "redis_keys": {"baseline": len(baseline_keys), "end": len(end_keys),
                       "left over": sorted(end_keys - baseline_keys)[:20]},
        "ghosts": await asyncio.to_thread(database_ghosts, deployment.database_url),
        "processes": processes,
    }


def judge(result: dict[str, Any]) -> list[Target]:
    chat = result["chat"]
    processes = result["processes"]
    long_enough = result["duration_s"] >= RSS_SLOPE_MIN_DURATION_S
    slopes = {name: figures["rss_slope_mib_per_10min"] for name, figures in processes.items()}
    fds = {name: figures["fds_end"] - figures["fds_after_warmup"] for name, figures in processes.items()}
    return [
        Target("RSS slope after warm-up ≤ 1 MiB / 10 min per process",
               ", ".join(f"{name} {slope:+.2f}" for name, slope in slopes.items()),
               all(slope <= RSS_SLOPE_TARGET_MIB_PER_10MIN for slope in slopes.values()) if long_enough else None,
               [name for name, slope in slopes.items() if slope > RSS_SLOPE_TARGET_MIB_PER_10MIN]),
        Target("open descriptors back to baseline", ", ".join(f"{name} {delta:+d}" for name, delta in fds.items()),
               all(delta <= FD_TOLERANCE for delta in fds.values()),
               [name for name, delta in fds.items() if delta > FD_TOLERANCE]),
        Target("Redis keys back to baseline", f"{result['redis_keys']['baseline']} → {result['redis_keys']['end']}",
               not result["redis_keys"]["left over"], result["redis_keys"]["left over"]),
        Target("no ghosts", ", ".join(f"{key} {value}" for key, value in result["ghosts"].items()),
               not any(result["ghosts"].values())),
        Target("no chat lost or duplicated",
               f"{chat['deliveries due']} due, {chat['lost']} lost, {chat['duplicated']} duplicated, "
               f"{chat['to a wrong room']} to a wrong room; latency p50 {chat['latency_ms']['p50']:.0f} ms, "
               f"p99 {chat['latency_ms']['p99']:.0f} ms, max {chat['latency_ms']['max']:.0f} ms",
               chat["deliveries due"] > 0 and chat["lost"] == 0 and chat["duplicated"] == 0
               and chat["to a wrong room"] == 0),
        Target("every request answered", f"{result['unanswered']} unanswered", result["unanswered"] == 0),
        Target("no session closed without a word", f"{result['silent_closes']} silent closes; "
               f"DISCONNECTED {result['disconnects'] or 'never'}", result["silent_closes"] == 0),
        Target("every play advances", f"{result['plays']} plays, {result['stalled_plays']} stalled",
               result["stalled_plays"] == 0 and (result["plays"] > 0 or result["media_pairs"] == 0)),
    ]


def markdown(result: dict[str, Any], targets: list[Target]) -> str:
    lines = [
        f"# Soak: {result['clients']} people, {result['rooms']} rooms, {result['media_pairs']} media pairs, "
        f"{result['duration_s']:.0f} s",
        "",
        f"{result['visits']} visits, {result['chat']['sent']} chat messages, {result['plays']} plays; "
        f"refusals {result['refusals'] or 'none'}; media errors {result['media_errors'] or 'none'}; "
        f"settled in {result['settle_s']:.1f} s after the churn.",
        "",
        "| process | RSS after warm-up (MiB) | RSS end | RSS peak | slope (MiB / 10 min) "
        "| fds after warm-up | fds end |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, figures in result["processes"].items():
        lines.append(
            f"| {name} | {fmt(figures['rss_start_mib'], 1)} | {fmt(figures['rss_end_mib'], 1)} | "
            f"{fmt(figures['rss_peak_mib'], 1)} | {figures['rss_slope_mib_per_10min']:+.2f} | "
            f"{figures['fds_after_warmup']} | {figures['fds_end']} |")
    return "\n".join([*lines, "", *targets_markdown(targets)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--duration", type=float, default=120, help="seconds of churn (1800 for the record)")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--publishers", type=int, default=2, help="presenter/viewer media pairs")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of Markdown")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        try:
            deployment = deploy(Path(folder))
        except Exception as error:  # reported as a failed run
            log(f"soak: the deployment did not start: {error}")
            return 2
        try:
            result = asyncio.run(drive(args, deployment))
        finally:
            teardown(deployment)
    targets = judge(result)
    result["targets"] = [asdict(target) for target in targets]
    print(json.dumps(result, indent=2) if args.json else markdown(result, targets))
    return exit_status(run_failed=False, results=targets)


if __name__ == "__main__":
    sys.exit(main())
