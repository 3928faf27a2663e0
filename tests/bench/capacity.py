"""Capacity benchmark: how many legs one media node forwards at 30 fps, and
how that scales with one node per core.

What it runs
------------
The deployment shape of docs/architecture.md on 127.0.0.1: ``--nodes``
media nodes (``manage.py runmedianode``, ``MEDIA_NODES=external``), one
daphne, a Redis of its own (a free port, no persistence) and SQLite in a
temporary folder. With one node, the node is pinned to CPU 0 (``taskset``)
and daphne and the load (this process) to CPU 1, so the node has a core of
its own and the load cannot steal from it. With two nodes, each node is
pinned to a core of its own and daphne and the load float over both: there
is no core left for the load, so it competes with the nodes (read the
load's CPU column; capacity per core is the fairer figure there).

The load is made to be cheap (``tests/bench/capacity_clients.py``): the
publishers replay VP8 encoded once (640x480, ~1.1 Mbit/s, a keyframe a
second), the players count RTP marker bits after SRTP and decode nothing;
every participant is a session of its own over the WebSocket protocol, all
in this one event loop. Video only.

Modes
-----
- ``--one-publisher N``: one room, one publisher, players added in steps of
  ``--step`` (N/4) up to N;
- ``--rooms RxP``: rooms of P participants, every one publishing and playing
  the P-1 others (P x (P-1) played legs a room), added in steps of
  ``--step`` rooms up to R.

With ``--ramp`` the steps go on past N (or R) until the frame rate falls
(or ``--ramp-max``). At each step, once every new play has its first frame
and ``--warmup`` seconds passed, a ``--window``-second window measures every
play's frames (from the RTP timestamps: the frames received and the frames
skipped), each node's CPU-s/s (``/proc``, every thread), daphne's and the
load's own.

Reported per step: legs (published, played), the lowest and median play
frame rate and the frames lost in the window, each node's CPU and rooms,
CPU per leg (node CPU / all its legs, publications and plays), daphne's and
the load's CPU. "fps falls" at the first step whose lowest play rate is
under 29 fps or that lost a frame; capacity is the played legs of the last
step before it.

Run from the project root (needs redis-server and taskset; ≤ 2 minutes)::

    .venv/bin/python tests/bench/capacity.py --one-publisher 100
    .venv/bin/python tests/bench/capacity.py --rooms 10x5
    .venv/bin/python tests/bench/capacity.py --rooms 16x5 --step 2 --nodes 2 --ramp

Targets (PASS/FAIL; exit 1 if one fails, 2 if the run failed): at the last
step of N (or R), every play ≥ 29 fps and no frame lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make rooms and tests importable
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conference_site.settings")

# isort: split
from loadtest.runner import polled_until  # noqa: E402
from rooms.media.peer import use_host_address  # noqa: E402
from tests.bench.capacity_clients import FrameCounter, Participant, encode_loop  # noqa: E402
from tests.bench.report import Target, exit_status, fmt, log, targets_markdown  # noqa: E402
from tests.bench.sfu_driver import cpu_seconds  # noqa: E402
from tests.processes import BIN, RedisServer, ServerProcess, free_port, manage  # noqa: E402

HOST = "127.0.0.1"
MIN_FPS = 29.0
FIRST_FRAME_TIMEOUT_S = 20.0
JOIN_CONCURRENCY = 10
READY = re.compile(r"media node ready: (\S+)")


def cpu_wait_seconds(pid: int) -> float:
    """Seconds ``pid``'s threads have spent runnable but waiting for a CPU
    (``/proc/PID/task/*/schedstat``, second field): how much a busy machine
    held the process back."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError):  # a thread that ended meanwhile
            continue
    return total / 1e9


def udp_receive_drops() -> int:
    """Datagrams the kernel dropped for a full socket receive buffer, machine-wide
    (``/proc/net/snmp`` Udp RcvbufErrors): a receiver that did not read in time."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


# --- The deployment ------------------------------------------------------------------------------------------------


@dataclass
class Deployment:
    redis: RedisServer
    web: ServerProcess
    nodes: dict[str, ServerProcess]  # by node name (its channel)
    folder: Path
    quotas: list[CpuQuota] = field(default_factory=list)

    def stop(self) -> None:
        for process in (self.web, *self.nodes.values()):
            process.stop()
        self.redis.kill()
        for quota in self.quotas:
            quota.remove()


class CpuQuota:
    """A cgroup of the cpu controller that lets its processes use ``cores`` of CPU time.

    Two nodes at a quota each emulate two small machines' cores on this one,
    and leave the rest of the cores to daphne and the load, which a node
    pinned to a whole core of a 2-core machine does not. Made by the run,
    removed by it (its processes are stopped first).
    """

    PERIOD_US = 100_000

    def __init__(self, name: str, cores: float) -> None:
        v1 = Path("/sys/fs/cgroup/cpu")
        self.v1 = (v1 / "cpu.cfs_quota_us").exists()
        root = v1 if self.v1 else Path("/sys/fs/cgroup")
        self.path = root / name
        self.path.mkdir()
        quota = int(cores * self.PERIOD_US)
        if self.v1:
            (self.path / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (self.path / "cpu.max").write_text(f"{quota} {self.PERIOD_US}")

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()


def server_env(folder: Path, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "REDIS_URL": redis_url,
        "LIVE_STATE_PREFIX": f"capacity-{uuid.uuid4().hex[:8]}",
        "VAR_DIR": str(folder / "var"),
        "MEDIA_NODES": "external",
        "MEDIA_HOST_IP": HOST,
        "ROOM_AUTH": "open",
        "DEBUG": "false",
        "SECRET_KEY": "capacity-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Every participant comes from 127.0.0.1, a hundred in one room: the
        # per-address and per-room limits are for the internet, not for one
        # load generator.
        "CONNECTIONS_PER_IP": "10000",
        "JOINS_PER_IP_PER_SECOND": "0",
        "ROOM_MAX_PARTICIPANTS": "1000",
        "PYTHONUNBUFFERED": "1",
    }


def pinned(cpus: str | None, args: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *args] if cpus is not None else args


def deploy(folder: Path, nodes: int, nice: int, node_cpu: float = 0.0) -> Deployment:
    quotas: list[CpuQuota] = []
    try:
        return _deploy(folder, nodes, nice, node_cpu, quotas)
    except BaseException:
        for quota in quotas:
            quota.remove()
        raise


def _deploy(folder: Path, nodes: int, nice: int, node_cpu: float, quotas: list[CpuQuota]) -> Deployment:
    redis = RedisServer(free_port(), folder).start()
    env = server_env(folder, redis.url)
    manage(env, "migrate", "--noinput")
    node_cpus = ["0"] if nodes == 1 else [str(index % (os.cpu_count() or 1)) for index in range(nodes)]
    load_cpus = "1" if nodes == 1 else None
    started: dict[str, ServerProcess] = {}
    for index, cpus in enumerate(node_cpus):
        process = ServerProcess(f"node-{index + 1}", pinned(cpus, [
            "nice", "-n", str(nice), sys.executable, "manage.py", "runmedianode"]),
                                env, folder / f"node-{index + 1}.log").start()
        if node_cpu:
            quota = CpuQuota(f"{folder.name}-node-{index + 1}", node_cpu)
            quotas.append(quota)
            assert process.process is not None
            quota.add(process.process.pid)
        process.wait_for_log("media node ready")
        match = READY.search(process.log())
        assert match is not None
        started[match.group(1)] = process
    port = free_port()
    daphne = ["nice", "-n", str(nice), str(BIN / "daphne"), "-b", HOST, "-p", str(port),
              "conference_site.asgi:application"]
    web = ServerProcess("web", pinned(load_cpus, daphne),
                        env, folder / "web.log", port=port).start()
    if load_cpus is not None:
        os.sched_setaffinity(0, {int(load_cpus)})
    os.setpriority(os.PRIO_PROCESS, 0, nice)
    return Deployment(redis, web, started, folder, quotas)


# --- One step ------------------------------------------------------------------------------------------------------


@dataclass
class Step:
    label: str
    published: int
    played: int
    sent_fps: float = 0.0  # the publishers' mean frame rate in the window
    fps_min: float = 0.0
    fps_p50: float = 0.0
    lost: int = 0
    late: int = 0  # plays without a first frame in time
    udp_drops: int = 0  # receive-buffer drops in the window, machine-wide
    node_cpu: dict[str, float] = field(default_factory=dict)  # CPU-s/s by node
    node_wait: dict[str, float] = field(default_factory=dict)  # s/s runnable but not running, by node
    node_legs: dict[str, int] = field(default_factory=dict)
    node_rooms: dict[str, int] = field(default_factory=dict)
    web_cpu: float = 0.0
    load_cpu: float = 0.0
    load_wait: float = 0.0  # s/s the load's threads were runnable but not running

    @property
    def falls(self) -> bool:
        return self.late > 0 or self.fps_min < MIN_FPS or self.lost > 0

    @property
    def cpu_per_leg(self) -> float | None:
        legs = sum(self.node_legs.values())
        return sum(self.node_cpu.values()) / legs if legs else None


@dataclass
class Load:
    url: str
    origin: str
    loop: list[tuple[bytes, bool]]
    participants: list[Participant] = field(default_factory=list)
    plays: list[FrameCounter] = field(default_factory=list)
    names: itertools.count[int] = field(default_factory=itertools.count)

    async def join(self, room: str) -> Participant:
        participant = await Participant.joined(self.url, self.origin, f"p{next(self.names)}", room)
        self.participants.append(participant)
        return participant

    async def close(self) -> None:
        await asyncio.gather(*(participant.close() for participant in self.participants), return_exceptions=True)


async def bounded(coroutines: list[Any], limit: int = JOIN_CONCURRENCY) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(coroutine: Any) -> Any:
        async with semaphore:
            return await coroutine

    return await asyncio.gather(*(one(coroutine) for coroutine in coroutines))


async def add_players(load: Load, room: str, stream: str, count: int) -> list[FrameCounter]:
    async def player() -> FrameCounter:
        return await (await load.join(room)).play(stream)

    return list(await bounded([player() for _ in range(count)]))


async def add_room(load: Load, room: str, size: int) -> list[FrameCounter]:
    people = list(await bounded([load.join(room) for _ in range(size)]))
    streams = await asyncio.gather(*(person.publish(load.loop) for person in people))
    plays = [(person, stream) for person in people for stream in streams if stream != person.stream]
    return list(await bounded([person.play(stream) for person, stream in plays]))


async def node_loads(deployment: Deployment, env: dict[str, str]) -> dict[str, tuple[int, int]]:
    """(legs, rooms) by node, from the registry the web side places rooms with."""
    from rooms.live.redis import redis_client
    from rooms.live.registry import RedisStreamRegistry

    client = redis_client(deployment.redis.url)
    try:
        registry = RedisStreamRegistry(client, env["LIVE_STATE_PREFIX"])
        found: dict[str, tuple[int, int]] = {}
        for status in await registry.nodes_status():
            load = status.load
            legs = (load.published + load.played) if load else 0
            found[status.node] = (legs, len(status.rooms))
        return found
    finally:
        await client.aclose()


async def measure(deployment: Deployment, env: dict[str, str], load: Load, label: str, new: list[FrameCounter],
                  warmup: float, window: float) -> Step:
    await polled_until(lambda: all(play.first_at is not None for play in new), FIRST_FRAME_TIMEOUT_S)
    await asyncio.sleep(warmup)
    pids = {name: process.process.pid for name, process in deployment.nodes.items() if process.process}
    assert deployment.web.process is not None
    web_pid, load_pid = deployment.web.process.pid, os.getpid()
    before_frames = [(play.frames, play.lost) for play in load.plays]
    cameras = [participant.camera for participant in load.participants if participant.camera is not None]
    before_sent = [camera.sent for camera in cameras]
    before_cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
    before_wait = {name: cpu_wait_seconds(pid) for name, pid in pids.items()}
    before_web, before_load, started = cpu_seconds(web_pid), cpu_seconds(load_pid), time.monotonic()
    before_drops = udp_receive_drops()
    before_load_wait = cpu_wait_seconds(load_pid)
    await asyncio.sleep(window)
    elapsed = time.monotonic() - started
    after_cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
    after_wait = {name: cpu_wait_seconds(pid) for name, pid in pids.items()}
    rates = [(play.frames - frames) / elapsed for play, (frames, _) in zip(load.plays, before_frames, strict=True)]
    lost = sum(play.lost - lost for play, (_, lost) in zip(load.plays, before_frames, strict=True))
    step = Step(
        label=label,
        published=sum(1 for participant in load.participants if participant.stream),
        played=len(load.plays),
        sent_fps=statistics.fmean(camera.sent - sent for camera, sent in zip(cameras, before_sent, strict=True))
        / elapsed if cameras else 0.0,
        fps_min=min(rates, default=0.0),
        fps_p50=statistics.median(rates) if rates else 0.0,
        lost=lost,
        udp_drops=udp_receive_drops() - before_drops,
        late=sum(1 for play in load.plays if play.first_at is None),
        node_cpu={name: (after_cpu[name] - before_cpu[name]) / elapsed for name in pids},
        node_wait={name: (after_wait[name] - before_wait[name]) / elapsed for name in pids},
        web_cpu=(cpu_seconds(web_pid) - before_web) / elapsed,
        load_cpu=(cpu_seconds(load_pid) - before_load) / elapsed,
        load_wait=(cpu_wait_seconds(load_pid) - before_load_wait) / elapsed,
    )
    for node, (legs, rooms) in (await node_loads(deployment, env)).items():
        step.node_legs[node], step.node_rooms[node] = legs, rooms
    log(f"{label}: {step.played} plays, sent {step.sent_fps:.1f} fps, fps min {step.fps_min:.1f} "
        f"p50 {step.fps_p50:.1f}, lost {step.lost}, UDP drops {step.udp_drops}, "
        f"nodes {', '.join(f'{cpu:.2f}' for cpu in step.node_cpu.values())} CPU-s/s "
        f"(waited {', '.join(f'{wait:.2f}' for wait in step.node_wait.values())}), "
        f"web {step.web_cpu:.2f}, load {step.load_cpu:.2f} (waited {step.load_wait:.2f})")
    return step


# --- The run -------------------------------------------------------------------------------------------------------


@dataclass
class Config:
    one_publisher: int
    rooms: int
    room_size: int
    nodes: int
    nice: int
    step: int
    ramp: bool
    ramp_max: int
    window: float
    warmup: float
    json: bool
    node_cpu: float = 0.0  # each node's CPU quota in cores (0: none)

    @property
    def mode(self) -> str:
        if self.one_publisher:
            return f"one publisher, {self.one_publisher} players"
        return f"{self.rooms} rooms of {self.room_size}"


async def run(config: Config, deployment: Deployment, env: dict[str, str]) -> list[Step]:
    use_host_address(HOST)
    assert deployment.web.port is not None
    load = Load(deployment.web.ws_url, f"http://{HOST}:{deployment.web.port}", encode_loop())
    steps: list[Step] = []
    try:
        if config.one_publisher:
            publisher = await load.join("r0")
            stream = await publisher.publish(load.loop)
            target, limit = config.one_publisher, max(config.one_publisher, config.ramp_max)
            while len(load.plays) < (limit if config.ramp else target):
                count = min(config.step, (limit if config.ramp else target) - len(load.plays))
                new = await add_players(load, "r0", stream, count)
                load.plays += new
                steps.append(await measure(deployment, env, load, f"{len(load.plays)} players", new,
                                           config.warmup, config.window))
                if config.ramp and len(load.plays) >= target and steps[-1].falls:
                    break
        else:
            target, limit = config.rooms, max(config.rooms, config.ramp_max)
            rooms = 0
            while rooms < (limit if config.ramp else target):
                count = min(config.step, (limit if config.ramp else target) - rooms)
                batches = await asyncio.gather(*(add_room(load, f"r{rooms + index}", config.room_size)
                                                 for index in range(count)))
                rooms += count
                new = [play for batch in batches for play in batch]
                load.plays += new
                steps.append(await measure(deployment, env, load, f"{rooms} rooms", new,
                                           config.warmup, config.window))
                if config.ramp and rooms >= target and steps[-1].falls:
                    break
    finally:
        await load.close()
    return steps


def judge(config: Config, steps: list[Step]) -> list[Target]:
    size = config.one_publisher or config.rooms * config.room_size * (config.room_size - 1)
    at_target = next((step for step in steps if step.played >= size), None)
    value = "not reached" if at_target is None else (
        f"{at_target.played} plays: lowest {at_target.fps_min:.1f} fps, {at_target.lost} frames lost")
    return [Target(f"{config.mode}: every play ≥ {MIN_FPS:g} fps, no frame lost", value,
                   None if at_target is None else not at_target.falls)]


def markdown(config: Config, steps: list[Step], targets: list[Target]) -> str:
    nodes = sorted({node for step in steps for node in step.node_cpu})
    short = {node: f"node {index + 1}" for index, node in enumerate(nodes)}
    quota = f", each held to {config.node_cpu:g} of a core" if config.node_cpu else ""
    lines = [f"# Capacity: {config.mode}, {config.nodes} media node(s){quota}", "",
             f"Window {config.window:g} s after {config.warmup:g} s of warm-up; video 640x480 VP8 ~1.1 Mbit/s at "
             "30 fps; players count frames without decoding.", ""]
    header = ["step", "published", "played", "sent fps", "fps min", "fps p50", "lost", "UDP drops",
              *(f"{short[node]} CPU-s/s, waited (legs, rooms)" for node in nodes), "CPU-s/s per leg", "web CPU",
              "load CPU, waited"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for step in steps:
        per_node = [f"{step.node_cpu.get(node, 0):.3f}, {step.node_wait.get(node, 0):.2f} "
                    f"({step.node_legs.get(node, 0)}, {step.node_rooms.get(node, 0)})" for node in nodes]
        cells = [step.label, str(step.published), str(step.played), f"{step.sent_fps:.1f}", f"{step.fps_min:.1f}",
                 f"{step.fps_p50:.1f}", str(step.lost), str(step.udp_drops), *per_node, fmt(step.cpu_per_leg, 4),
                 f"{step.web_cpu:.2f}", f"{step.load_cpu:.2f}, {step.load_wait:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    holding = [step for step in steps if not step.falls]
    falling = next((step for step in steps if step.falls), None)
    lines += ["", f"- Capacity at 30 fps: {holding[-1].played if holding else 0} played legs "
              f"({holding[-1].played + holding[-1].published if holding else 0} legs with the publications).",
              f"- fps starts to fall: {falling.label + f' ({falling.played} played)' if falling else 'not reached'}.",
              ""]
    return "\n".join(lines + targets_markdown(targets))


def parse_args(argv: list[str] | None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--one-publisher", type=int, metavar="N", help="one publisher, N players")
    mode.add_argument("--rooms", metavar="RxP", help="R rooms of P participants, everyone publishing and playing")
    parser.add_argument("--nodes", type=int, choices=(1, 2), default=1, help="media nodes, one per core (1)")
    parser.add_argument("--nice", type=int, default=0, help="nice value of the nodes, daphne and the load (0); "
                        "a negative one (root) puts them before the machine's other work, as on a host of their own")
    parser.add_argument("--step", type=int, default=0, help="players (or rooms) added per step (N/4, R/5)")
    parser.add_argument("--ramp", action="store_true", help="go on past N (R) until the frame rate falls")
    parser.add_argument("--ramp-max", type=int, default=0, help="stop the ramp there (4 N, 4 R)")
    parser.add_argument("--window", type=float, default=5.0, help="measured seconds a step (5)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each window (2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument("--node-cpu", type=float, default=0.0, metavar="CORES",
                        help="hold each node to this much CPU (a cgroup quota, root), e.g. 0.35 (none)")
    args = parser.parse_args(argv)
    rooms, size = 0, 0
    if args.rooms:
        rooms, size = (int(part) for part in args.rooms.split("x"))
    total = args.one_publisher or rooms
    step = args.step or max(1, total // (4 if args.one_publisher else 5))
    return Config(args.one_publisher or 0, rooms, size, args.nodes, args.nice, step, args.ramp,
                  args.ramp_max or 4 * total, args.window, args.warmup, args.json, args.node_cpu)


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    for tool in ("redis-server", "taskset"):
        if shutil.which(tool) is None:
            log(f"{tool} is needed")
            return 2
    folder = Path(tempfile.mkdtemp(prefix="capacity-"))
    deployment: Deployment | None = None
    try:
        deployment = deploy(folder, config.nodes, config.nice, config.node_cpu)
        steps = asyncio.run(run(config, deployment, deployment.web.env))
    except Exception:
        traceback.print_exc()
        log(f"the run failed; logs in {folder}")
        if deployment is not None:
            deployment.stop()
        return 2
    deployment.stop()
    shutil.rmtree(folder, ignore_errors=True)
    targets = judge(config, steps)
    if config.json:
        print(json.dumps({"config": asdict(config), "steps": [asdict(step) | {"cpu_per_leg": step.cpu_per_leg}
                                                             for step in steps]}, indent=2))
    else:
        print(markdown(config, steps, targets))
    return exit_status(run_failed=False, results=targets)


if __name__ == "__main__":
    sys.exit(main())
