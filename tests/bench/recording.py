"""Recording benchmark: server CPU per recorded stream, the project's recorder against aiortc's MediaRecorder.

What it measures
----------------
N streams, each one publisher (640x480 at 30 fps, ~1 Mbit/s of textured VP8
video, and Opus) and one subscriber, so forwarding really runs. For each N
and variant a fresh server process (``tests/bench/forwarding_server.py`` with
``tests/bench/recording_server.py``'s variants) forwards every stream with
the project's SFU core, and:

- ``passthrough``: records nothing;
- ``recorder``: records every stream with ``recording.capture.StreamRecorder``
  (the encoded frames written as they are, plus the timing sidecar), wired on
  the stream's taps as the media node does;
- ``mediarecorder`` (the baseline): records every stream the way aiortc's
  users do, ``aiortc.contrib.media.MediaRecorder(path)`` on the receiver's
  decoded tracks (``addTrack``, ``start``, ``stop``): decoded, then encoded
  again to H.264 + AAC in an MP4.

The publishers send pre-encoded clips (``tests/bench/recording_media.py``):
encoding live would cost the driver ~0.2 CPU-s/s per stream, which at N=4,
next to the baseline server, overloads a 2-core machine. Subscribers count
encoded frames without decoding them (``tests.bench.sfu_driver.join``).

The cost of recording one stream, as the issue defines it, is
``(cpu(variant, N) - cpu(passthrough, N)) / N``: server CPU-s/s from
``/proc/PID/stat`` (every thread) over the window. A few thousandths of a
CPU-s/s per stream is the difference of two readings from two processes, so
passthrough and StreamRecorder are measured ``--rounds`` times each in
alternating order and averaged. The recorder's cost is also measured inside
its server: the CPU of its writer threads (``/proc/PID/task/TID/stat``) plus
the CPU the event loop spends in its sinks (timed around each call). That
figure is steady from run to run; it misses only indirect costs (cache, GIL
hand-offs) that the difference sees.

When the window ends the server finishes its records and exits; each file is
then decoded with ``ffprobe -count_frames``: its duration must match the
recorded span (first keyframe at the server -> the stop request, within 1 s
or 5 %), with >= 27 video frames per second and >= 40 audio frames per second
(Opus sends 50, AAC 46.9), and without decoding errors. A server that fails
to send, forward (>= 28 fps) or record everything it was given "fell
behind": its CPU is then a lower bound of what the work needs.

The machine is shared: the output gives the 1-minute load average before and
after each window and the CPU the rest of the machine used during it
(``/proc/stat`` busy time minus the server's and the driver's). A window in
which the rest of the machine used more than ``--other-limit`` CPU-s/s is
measured again (``--retries``), and the least disturbed attempt is kept.

Targets (printed PASS/FAIL; exit status 1 if any fails, 2 if a run failed):
StreamRecorder <= 0.005 CPU-s/s per recorded stream at every N (both by the
difference and in process); every StreamRecorder file plays (as above); no
subscriber below 28 fps while recording. The ratio MediaRecorder /
StreamRecorder per stream is reported.

Part (b), the room mix against the ffmpeg CLI, is ``tests/bench/recording_mix.py``;
it runs after this one and prints its own table, unless ``--no-mix`` (or
``--json``); ``--quick`` makes it short too.

Run from the project root (no Redis, no database)::

    .venv/bin/python tests/bench/recording.py            # N=1,4, 2 rounds, 15 s windows, then the mix
    .venv/bin/python tests/bench/recording.py --quick    # N=1, 1 round, 6 s windows, a short mix

Flags: ``--streams`` ("1,4"; 0 measures an idle server), ``--variants``
(passthrough,recorder,mediarecorder), ``--codec`` VP8|H264 (VP8),
``--rounds`` (2), ``--window`` seconds (15), ``--warmup`` seconds (3),
``--bitrate`` bit/s (1000000), ``--other-limit`` CPU-s/s (0.5), ``--retries``
(1), ``--mix``/``--no-mix``, ``--quick``, ``--json``. Progress goes to stderr;
server logs go to a temporary directory, named at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make rooms and tests importable
    sys.path.insert(0, str(ROOT))

# isort: split
from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402

from rooms.media.peer import use_host_address, video_capabilities  # noqa: E402
from tests.bench.recording_media import ClipTrack, EncodedClip, opus_clip, video_clip  # noqa: E402
from tests.bench.report import Target, exit_status, fmt, log, targets_markdown  # noqa: E402
from tests.bench.sfu_driver import (  # noqa: E402
    CLOCK_TICKS,
    FIRST_FRAME_TIMEOUT_S,
    FPS,
    HEIGHT,
    HOST,
    TARGET_FPS,
    WIDTH,
    ServerProcess,
    Subscriber,
    check_loopback,
    close_all,
    cpu_seconds,
    join,
    peer_connection,
    rss_mb,
    wait_until,
)

VARIANTS = ("passthrough", "recorder", "mediarecorder")
SERVER_VARIANTS = {"passthrough": "streams", "recorder": "streams-recorder", "mediarecorder": "streams-mediarecorder"}
VARIANT_TITLES = {"passthrough": "passthrough", "recorder": "StreamRecorder", "mediarecorder": "MediaRecorder"}
RECORDING = ("recorder", "mediarecorder")

TARGET_STREAM_CPU = 0.005
DURATION_TOLERANCE_S = 1.0
DURATION_TOLERANCE = 0.05
MIN_FILE_FPS = 27.0
MIN_AUDIO_FRAMES_PER_S = 40.0
PROBE_TIMEOUT_S = 120.0
DEFAULT_STREAMS, DEFAULT_ROUNDS, DEFAULT_WINDOW_S, DEFAULT_WARMUP_S = [1, 4], 2, 15.0, 3.0
QUICK_STREAMS, QUICK_WINDOW_S, QUICK_WARMUP_S = [1], 6.0, 2.0
MIX_BENCHMARK = "tests/bench/recording_mix.py"
QUICK_MIX_ARGS = ["--repeats", "1", "--duration", "20"]


# --- Measurements ------------------------------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU seconds every CPU of the machine has spent busy so far (``/proc/stat``)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


@dataclass(frozen=True)
class Snapshot:
    at: float
    server_cpu: float
    driver_cpu: float
    machine_cpu: float
    writer_cpu: float
    sink_cpu: float
    load: float
    published: tuple[int, ...]  # video frames each publisher has sent
    frames: tuple[int, ...]  # video frames each subscriber has received
    sounds: tuple[int, ...]  # audio frames each subscriber has received


async def snapshot(server: ServerProcess, videos: Sequence[ClipTrack], subscribers: Sequence[Subscriber]) -> Snapshot:
    stats = await server.request("stats")
    return Snapshot(
        at=time.monotonic(),
        server_cpu=cpu_seconds(server.pid),
        driver_cpu=cpu_seconds(os.getpid()),
        machine_cpu=machine_busy_seconds(),
        writer_cpu=float(stats["writer_cpu_s"]),
        sink_cpu=float(stats["sink_cpu_s"]),
        load=os.getloadavg()[0],
        published=tuple(video.count for video in videos),
        frames=tuple(subscriber.frames for subscriber in subscribers),
        sounds=tuple(subscriber.audio_frames for subscriber in subscribers),
    )


def lowest_rate(before: Sequence[int], after: Sequence[int], elapsed: float) -> float | None:
    return min(((b - a) / elapsed for a, b in zip(before, after, strict=True)), default=None)


@dataclass
class Record:
    """One recorded file, as ffprobe decodes it."""

    name: str
    size_bytes: int
    expected_s: float | None  # first keyframe at the server -> stop request
    duration_s: float | None = None
    codecs: str = ""
    video_frames: int = 0
    audio_frames: int = 0
    errors: str = ""

    @property
    def video_fps(self) -> float | None:
        return self.video_frames / self.duration_s if self.duration_s else None

    @property
    def audio_per_s(self) -> float | None:
        return self.audio_frames / self.duration_s if self.duration_s else None

    @property
    def duration_error_s(self) -> float | None:
        if self.duration_s is None or self.expected_s is None:
            return None
        return self.duration_s - self.expected_s

    @property
    def plays(self) -> bool:
        error = self.duration_error_s
        return (
            not self.errors
            and error is not None
            and self.expected_s is not None
            and abs(error) <= max(DURATION_TOLERANCE_S, DURATION_TOLERANCE * self.expected_s)
            and (self.video_fps or 0.0) >= MIN_FILE_FPS
            and (self.audio_per_s or 0.0) >= MIN_AUDIO_FRAMES_PER_S
        )


async def record_probe(path: Path, expected_s: float | None) -> Record:
    """Decode a record with ffprobe: duration, frames per stream, and whatever it complains about."""
    record = Record(path.name, 0, expected_s)
    process = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-count_frames", "-of", "json",
        "-show_entries", "format=duration,size:stream=codec_type,codec_name,nb_read_frames", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), PROBE_TIMEOUT_S)
    record.errors = " ".join(err.decode(errors="replace").split())[:200]
    if process.returncode != 0:
        record.errors = record.errors or f"ffprobe exited with {process.returncode}"
        return record
    data = json.loads(out)
    duration = data.get("format", {}).get("duration")
    record.size_bytes = int(data.get("format", {}).get("size") or 0)
    record.duration_s = float(duration) if duration not in (None, "N/A") else None
    streams = data.get("streams", [])
    record.codecs = "+".join(stream.get("codec_name", "?") for stream in streams)
    for stream in streams:
        frames = int(stream.get("nb_read_frames") or 0)
        if stream.get("codec_type") == "video":
            record.video_frames += frames
        elif stream.get("codec_type") == "audio":
            record.audio_frames += frames
    return record


def record_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if path.suffix in (".webm", ".mkv", ".mp4"))  # no sidecars


async def records_probe(directory: Path, first_media_at: Sequence[float | None], stopped_at: float) -> list[Record]:
    """Every record in ``directory``; a stream ``sK`` started at ``first_media_at[K-1]``."""
    records = []
    for path in record_files(directory):
        index = int(path.stem.removeprefix("s")) - 1
        started = first_media_at[index] if 0 <= index < len(first_media_at) else None
        records.append(await record_probe(path, None if started is None else stopped_at - started))
    return records


async def publish(server: ServerProcess, codec: str, clips: tuple[EncodedClip, EncodedClip]) -> tuple[
    RTCPeerConnection, ClipTrack
]:
    """A publisher of the pre-encoded clips (video, audio); its media flows once the server's answer is applied."""
    pc = peer_connection()
    video = ClipTrack(clips[0])
    pc.addTransceiver(video, direction="sendonly").setCodecPreferences(video_capabilities(codec))
    pc.addTransceiver(ClipTrack(clips[1]), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    check_loopback(pc.localDescription.sdp, "publisher offer")
    answer = (await server.request("publish", sdp=pc.localDescription.sdp))["sdp"]
    check_loopback(answer, "publish answer")
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return pc, video


# --- One measurement ---------------------------------------------------------------------------------------------


@dataclass
class Config:
    streams: list[int]
    variants: list[str]
    codec: str
    rounds: int
    window: float
    warmup: float
    bitrate: int
    other_limit: float
    retries: int
    mix: bool
    quick: bool
    json: bool


@dataclass
class Point:
    variant: str
    streams: int
    round: int
    server_cpu: float = 0.0  # CPU-s/s over the window
    server_rss_mb: float = 0.0  # at the end of the window
    writer_cpu: float = 0.0  # recorder: its writer threads, all streams
    sink_cpu: float = 0.0  # recorder: its sinks on the event loop, all streams
    driver_cpu: float = 0.0
    other_cpu: float = 0.0  # the rest of the machine (other users, kernel)
    load_before: float = 0.0
    load_after: float = 0.0
    publisher_fps_min: float | None = None
    fps_min: float | None = None  # subscribers' video
    audio_fps_min: float | None = None  # subscribers' Opus frames (50 sent)
    window_s: float = 0.0
    records: list[Record] = field(default_factory=list)
    records_dir: str = ""
    attempts: int = 1
    error: str | None = None

    @property
    def kept_up(self) -> bool:
        """Every frame sent, forwarded and (when recording) in a playable file: else its CPU is a lower bound."""
        return (
            self.error is None
            and all(rate is None or rate >= TARGET_FPS for rate in (self.publisher_fps_min, self.fps_min))
            and all(record.plays for record in self.records)
        )


async def measure(
    cfg: Config, variant: str, count: int, clips: tuple[EncodedClip, EncodedClip], log_path: Path
) -> Point:
    point = Point(variant, count, 0)
    server: ServerProcess | None = None
    publishers: list[RTCPeerConnection] = []
    videos: list[ClipTrack] = []
    subscribers: list[Subscriber] = []
    first_media_at: list[float | None] = []
    stopped_at = 0.0
    try:
        server = await ServerProcess.start(SERVER_VARIANTS[variant], cfg.codec, cfg.bitrate, log_path)
        for _ in range(count):
            publisher, video = await publish(server, cfg.codec, clips)
            publishers.append(publisher)
            videos.append(video)
            subscribers.append(await join(server, audio=True))
        await wait_until(lambda: all(s.first_frame_at is not None for s in subscribers), FIRST_FRAME_TIMEOUT_S)
        await asyncio.sleep(cfg.warmup)

        before = await snapshot(server, videos, subscribers)
        await asyncio.sleep(cfg.window)
        after = await snapshot(server, videos, subscribers)
        elapsed = point.window_s = after.at - before.at
        point.server_cpu = (after.server_cpu - before.server_cpu) / elapsed
        point.driver_cpu = (after.driver_cpu - before.driver_cpu) / elapsed
        point.writer_cpu = (after.writer_cpu - before.writer_cpu) / elapsed
        point.sink_cpu = (after.sink_cpu - before.sink_cpu) / elapsed
        machine = (after.machine_cpu - before.machine_cpu) / elapsed
        point.other_cpu = max(0.0, machine - point.server_cpu - point.driver_cpu)
        point.load_before, point.load_after = before.load, after.load
        point.server_rss_mb = rss_mb(server.pid)
        point.publisher_fps_min = lowest_rate(before.published, after.published, elapsed)
        point.fps_min = lowest_rate(before.frames, after.frames, elapsed)
        point.audio_fps_min = lowest_rate(before.sounds, after.sounds, elapsed)
        stats = await server.request("stats")
        first_media_at = list(stats["first_media_at"])
        point.records_dir = str(stats["records"])
    except Exception as error:
        point.error = f"{type(error).__name__}: {error}"
        if str(log_path) not in point.error:
            point.error += f" (server log: {log_path})"
        log(traceback.format_exc())
    finally:
        # The server finishes its records while the media still flows, as a media node does on unpublish.
        stopped_at = time.time()
        if server is not None:
            await server.stop()
        await close_all([s.pc for s in subscribers] + publishers)
    if point.records_dir and point.error is None:
        directory = Path(point.records_dir)
        point.records = await records_probe(directory, first_media_at, stopped_at)
        if variant in RECORDING and len(point.records) != count:
            point.error = f"{len(point.records)} records for {count} streams (kept in {directory})"
        elif variant != "recorder" or all(record.plays for record in point.records):
            shutil.rmtree(directory, ignore_errors=True)
            point.records_dir = ""  # a StreamRecorder record that does not play is kept for a look
    return point


# --- The run -----------------------------------------------------------------------------------------------------


def plan(cfg: Config) -> list[tuple[str, int, int]]:
    """(variant, N, round), by N: the points compared with each other are measured close together in time.

    The rounds of passthrough and StreamRecorder alternate their order (P R, R P, ...), so a load that
    drifts during a run weighs on both alike; MediaRecorder, whose cost dwarfs that drift, runs once.
    """
    points = []
    for count in cfg.streams:
        if count == 0:  # with no stream there is nothing to record
            points += [("passthrough", 0, index) for index in range(cfg.rounds) if "passthrough" in cfg.variants]
            continue
        for index in range(cfg.rounds):
            pair = [v for v in ("passthrough", "recorder") if v in cfg.variants]
            points += [(variant, count, index) for variant in (pair if index % 2 == 0 else pair[::-1])]
            if index == 0 and "mediarecorder" in cfg.variants:
                points.append(("mediarecorder", count, 0))
    return points


@dataclass
class Summary:
    """One variant at one N, over its rounds."""

    variant: str
    streams: int
    cpus: list[float]
    kept_up: bool
    failed: bool
    per_stream: float | None = None  # (mean cpu - passthrough's mean cpu) / N
    in_process: float | None = None  # recorder: (writer threads + sinks) / N, mean over rounds
    resolution: float = 0.0  # one clock tick per window, per stream

    @property
    def cpu(self) -> float | None:
        return statistics.fmean(self.cpus) if self.cpus else None


def summarize(points: list[Point]) -> list[Summary]:
    summaries = []
    for variant, count in sorted({(p.variant, p.streams) for p in points}, key=lambda key: (key[1], key[0])):
        group = [p for p in points if p.variant == variant and p.streams == count]
        done = [p for p in group if p.error is None]
        summary = Summary(
            variant, count, [p.server_cpu for p in done], all(p.kept_up for p in group), len(done) < len(group)
        )
        if count and done:
            summary.resolution = 1 / (CLOCK_TICKS * min(p.window_s for p in done) * count)
            if variant == "recorder":
                summary.in_process = statistics.fmean((p.writer_cpu + p.sink_cpu) / count for p in done)
        summaries.append(summary)
    for summary in summaries:
        base = next((s for s in summaries if s.variant == "passthrough" and s.streams == summary.streams), None)
        if summary.variant in RECORDING and summary.streams and base and base.cpu is not None and summary.cpu:
            summary.per_stream = (summary.cpu - base.cpu) / summary.streams
    return summaries


def ratio(ours: Summary | None, theirs: Summary | None, measure: str) -> str:
    """MediaRecorder per-stream CPU / StreamRecorder's (``measure``: per_stream or in_process)."""
    mine = None if ours is None else getattr(ours, measure)
    if theirs is None or theirs.per_stream is None or mine is None or ours is None:
        return "-"
    # MediaRecorder doing less than its work (it fell behind) gives a lower bound, as does
    # ours below two clock ticks per window (two readings, each up to a tick off).
    floor = 2 * ours.resolution
    bound = "> " if mine < floor or not theirs.kept_up else ""
    return f"{bound}{theirs.per_stream / max(mine, floor):.0f}x"


def targets(summaries: list[Summary], points: list[Point]) -> list[Target]:
    ours = [s for s in summaries if s.variant == "recorder"]
    results = []
    for measure, title in (("per_stream", "server CPU difference"), ("in_process", "in process: writer + sinks")):
        costs = [(getattr(s, measure), f"N={s.streams}") for s in ours]
        worst = max((value for value, _ in costs if value is not None), default=None)
        results.append(
            Target(
                f"StreamRecorder <= {TARGET_STREAM_CPU} CPU-s/s per recorded stream at every N ({title})",
                "-" if worst is None else f"max {worst:.4f}",
                None if not costs else all(v is not None and v <= TARGET_STREAM_CPU for v, _ in costs),
                [w for v, w in costs if v is None or v > TARGET_STREAM_CPU],
            )
        )
    recorded = [p for p in points if p.variant == "recorder"]
    records = [(record, f"N={p.streams} round {p.round + 1} {record.name}") for p in recorded for record in p.records]
    results.append(
        Target(
            f"every StreamRecorder file decodes cleanly, lasts the recorded span (+-{DURATION_TOLERANCE_S:g} s or "
            f"{DURATION_TOLERANCE:.0%}), >= {MIN_FILE_FPS:g} video fps, >= {MIN_AUDIO_FRAMES_PER_S:g} audio frames/s",
            f"{sum(r.plays for r, _ in records)} of {len(records)} files",
            None if not recorded else all(r.plays for r, _ in records) and all(p.error is None for p in recorded),
            [w for r, w in records if not r.plays] + [f"N={p.streams} failed" for p in recorded if p.error],
        )
    )
    rates = [(p.fps_min, f"N={p.streams} round {p.round + 1}") for p in recorded]
    lowest = min((value for value, _ in rates if value is not None), default=None)
    results.append(
        Target(
            f"forwarding undisturbed while recording: every subscriber >= {TARGET_FPS:g} fps (of {FPS})",
            "-" if lowest is None else f"min {lowest:.1f} fps",
            None if not rates else all(v is not None and v >= TARGET_FPS for v, _ in rates),
            [w for v, w in rates if v is None or v < TARGET_FPS],
        )
    )
    return results


# --- Report ------------------------------------------------------------------------------------------------------


def cpu_cell(summary: Summary | None) -> str:
    if summary is None:
        return "-"
    if not summary.cpus:
        return "failed"
    rounds = f" ({', '.join(f'{cpu:.3f}' for cpu in summary.cpus)})" if len(summary.cpus) > 1 else ""
    return f"{summary.cpu:.3f}{rounds}" + ("" if summary.kept_up else " fell behind")


def records_row(p: Point) -> str:
    records = p.records
    title = f"| {VARIANT_TITLES[p.variant]} | {p.streams} | {p.round + 1} "
    if not records:
        return title + "| 0 |  |  |  |  |  |  |  |  |"
    kbps = [r.size_bytes * 8 / r.duration_s / 1000 for r in records if r.duration_s]
    durations = [r.duration_s for r in records if r.duration_s is not None]
    errors = [abs(e) for r in records if (e := r.duration_error_s) is not None]
    video = [fps for r in records if (fps := r.video_fps) is not None]
    audio = [rate for r in records if (rate := r.audio_per_s) is not None]
    complaints = sorted({r.errors for r in records if r.errors})
    kept = f" (kept in {p.records_dir})" if p.records_dir else ""
    return title + (
        f"| {len(records)} {records[0].codecs} | {statistics.fmean(r.size_bytes for r in records) / 1e6:.2f} "
        f"| {fmt(min(kbps, default=None), 0)}-{fmt(max(kbps, default=None), 0)} "
        f"| {fmt(min(durations, default=None), 2)}-{fmt(max(durations, default=None), 2)} "
        f"| {fmt(max(errors, default=None), 2)} | {fmt(min(video, default=None), 1)} "
        f"| {fmt(min(audio, default=None), 1)} | {'; '.join(complaints) or 'none'} "
        f"| {'yes' if all(r.plays for r in records) else 'NO'}{kept} |"
    )


def markdown(
    cfg: Config, points: list[Point], summaries: list[Summary], results: list[Target], command: str,
    loads: tuple[float, float],
) -> str:
    lines = [
        "# Recording benchmark: server CPU per recorded stream",
        "",
        f"`{command}`",
        "",
        f"N streams, each one publisher ({WIDTH}x{HEIGHT}@{FPS} {cfg.codec} at {cfg.bitrate / 1000:g} kbit/s and "
        "Opus, pre-encoded) and one subscriber; every variant forwards them with the project's SFU core "
        "(encoded passthrough). StreamRecorder writes the forwarded frames as they are (WebM/Matroska + sidecar); "
        "MediaRecorder (aiortc's, the baseline) records the receiver's decoded tracks to MP4, encoding H.264 + AAC "
        f"again. Fresh server process per measurement; {cfg.warmup:g} s warm-up after the subscribers' first "
        f"frames, then a {cfg.window:g} s window; passthrough and StreamRecorder measured {cfg.rounds} time(s) each "
        "(values per round in brackets), MediaRecorder once. CPU is the server process's utime+stime per second "
        f"(resolution {1 / (CLOCK_TICKS * cfg.window):.4f} CPU-s/s per window). Per stream: (mean cpu(variant, N) "
        "- mean cpu(passthrough, N)) / N; in process: the StreamRecorder's writer threads plus its sinks on the "
        f"event loop, measured inside the recording server, / N. Machine: {os.cpu_count()} CPUs, 1-minute load "
        f"average {loads[0]:.2f} at the start, {loads[1]:.2f} at the end.",
        "",
        "## Server CPU",
        "",
        "| N | passthrough CPU-s/s | StreamRecorder CPU-s/s | per stream | in process per stream "
        "| MediaRecorder CPU-s/s | per stream | MediaRecorder / StreamRecorder (per stream; in process) |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def find(variant: str, count: int) -> Summary | None:
        return next((s for s in summaries if s.variant == variant and s.streams == count), None)

    for count in sorted({s.streams for s in summaries}):
        base, ours, theirs = find("passthrough", count), find("recorder", count), find("mediarecorder", count)
        theirs_bound = "> " if theirs is not None and not theirs.kept_up else ""
        lines.append(
            f"| {count} | {cpu_cell(base)} | {cpu_cell(ours)} | {fmt(ours.per_stream if ours else None, 4)} "
            f"| {fmt(ours.in_process if ours else None, 4)} | {cpu_cell(theirs)} "
            f"| {theirs_bound}{fmt(theirs.per_stream if theirs else None, 4)} "
            f"| {ratio(ours, theirs, 'per_stream')}; {ratio(ours, theirs, 'in_process')} |"
        )
    if any(not s.kept_up and not s.failed for s in summaries):
        lines += [
            "",
            f"Fell behind: some frames were not sent, forwarded at >= {TARGET_FPS:g} fps or written to a playable "
            "file (see the tables below); that server did less than the work asked, so its CPU figures are lower "
            "bounds.",
        ]
    lines += [
        "",
        "## Records (decoded by ffprobe after the server stopped)",
        "",
        "| variant | N | round | files | MB per file | kbit/s | duration s | worst duration error s | video fps min "
        "| audio frames/s min | decoder complaints | all play |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [records_row(p) for p in points if p.variant in RECORDING]
    lines += [
        "",
        "## Details and load",
        "",
        "| variant | N | round | server CPU-s/s | writer + sinks CPU-s/s | publisher fps min | subscriber fps min "
        "| audio fps min | server RSS MB | driver CPU-s/s | rest of machine CPU-s/s | load avg before / after "
        "| attempts | error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        in_process = f"{p.writer_cpu:.4f} + {p.sink_cpu:.4f}" if p.variant == "recorder" else "-"
        lines.append(
            f"| {VARIANT_TITLES[p.variant]} | {p.streams} | {p.round + 1} | {p.server_cpu:.3f} | {in_process} "
            f"| {fmt(p.publisher_fps_min, 1)} | {fmt(p.fps_min, 1)} | {fmt(p.audio_fps_min, 1)} "
            f"| {p.server_rss_mb:.1f} | {p.driver_cpu:.3f} | {p.other_cpu:.3f} "
            f"| {p.load_before:.2f} / {p.load_after:.2f} | {p.attempts} | {p.error or ''} |"
        )
    disturbed = [p for p in points if p.error is None and p.other_cpu > cfg.other_limit]
    if disturbed:
        lines += [
            "",
            f"Disturbed (the rest of the machine used > {cfg.other_limit:g} CPU-s/s in every attempt): "
            + ", ".join(f"{VARIANT_TITLES[p.variant]} N={p.streams} round {p.round + 1}" for p in disturbed)
            + ". Rerun when the machine is quieter.",
        ]
    lines += ["", *targets_markdown(results)]
    return "\n".join(lines)


# --- Command line ------------------------------------------------------------------------------------------------


def parse_counts(text: str) -> list[int]:
    counts = sorted({int(part) for part in text.split(",") if part.strip()})
    if not counts or any(count < 0 for count in counts):
        raise argparse.ArgumentTypeError("stream counts must be >= 0")
    return counts


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--streams", type=parse_counts, default=None, help="recorded stream counts (1,4)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--codec", choices=("VP8", "H264"), default="VP8")
    parser.add_argument("--rounds", type=int, default=None, help="measurements of passthrough and StreamRecorder (2)")
    parser.add_argument("--window", type=float, default=None, help="measurement window, seconds (15)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds after the first frames, unmeasured (3)")
    parser.add_argument("--bitrate", type=int, default=1_000_000, help="publishers' video bitrate, bit/s")
    parser.add_argument("--other-limit", type=float, default=0.5,
                        help="CPU-s/s the rest of the machine may use before a window counts as disturbed (0.5)")
    parser.add_argument("--retries", type=int, default=1, help="measurements again of a disturbed point (1)")
    parser.add_argument("--mix", action=argparse.BooleanOptionalAction, default=True,
                        help="also run tests/bench/recording_mix.py (the room mix against the ffmpeg CLI)")
    parser.add_argument("--quick", action="store_true", help="N=1, one round, 6 s windows, a short mix")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (without the mix)")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not variants or any(v not in VARIANTS for v in variants):
        parser.error(f"--variants takes a comma-separated subset of {', '.join(VARIANTS)}")
    if "passthrough" not in variants:
        parser.error("--variants needs passthrough: per-stream costs subtract it")
    quick = args.quick
    config = Config(
        streams=list(args.streams or (QUICK_STREAMS if quick else DEFAULT_STREAMS)),
        variants=[v for v in VARIANTS if v in variants],
        codec=args.codec,
        rounds=args.rounds or (1 if quick else DEFAULT_ROUNDS),
        window=args.window or (QUICK_WINDOW_S if quick else DEFAULT_WINDOW_S),
        warmup=args.warmup if args.warmup is not None else (QUICK_WARMUP_S if quick else DEFAULT_WARMUP_S),
        bitrate=args.bitrate,
        other_limit=args.other_limit,
        retries=args.retries,
        mix=args.mix,
        quick=quick,
        json=args.json,
    )
    if config.window <= 0 or config.warmup < 0 or config.retries < 0 or config.rounds < 1:
        parser.error("--window must be > 0, --rounds >= 1, --warmup and --retries >= 0")
    return config


async def run(cfg: Config) -> tuple[list[Point], Path]:
    use_host_address(HOST)
    log(f"encoding the publishers' clips ({cfg.codec}, {cfg.bitrate / 1000:g} kbit/s, Opus) ...")
    video, audio = await asyncio.gather(video_clip(cfg.codec, cfg.bitrate), opus_clip())
    log_dir = Path(tempfile.mkdtemp(prefix="recording-bench-logs-"))
    points = []
    todo = plan(cfg)
    for index, (variant, count, round_index) in enumerate(todo, 1):
        attempts: list[Point] = []
        while len(attempts) <= cfg.retries:
            title = f"{VARIANT_TITLES[variant]} N={count} round {round_index + 1} attempt {len(attempts) + 1}"
            log(f"[{index}/{len(todo)}] {title} ...")
            log_path = log_dir / f"{variant}-{count}-{round_index + 1}-{len(attempts) + 1}.log"
            point = await measure(cfg, variant, count, (video, audio), log_path)
            point.round = round_index
            attempts.append(point)
            log(
                f"    server {point.server_cpu:.3f} CPU-s/s (writers {point.writer_cpu:.4f}, sinks "
                f"{point.sink_cpu:.4f}), subscriber fps min {fmt(point.fps_min, 1)}, driver {point.driver_cpu:.3f}, "
                f"rest of machine {point.other_cpu:.3f} CPU-s/s, load {point.load_before:.2f} -> {point.load_after:.2f}"
                + (f", ERROR {point.error}" if point.error else "")
            )
            if point.error or point.other_cpu <= cfg.other_limit:
                break
            log(f"    disturbed (rest of machine > {cfg.other_limit:g} CPU-s/s)")
        best = min(attempts, key=lambda p: (p.error is not None, p.other_cpu))
        best.attempts = len(attempts)
        points.append(best)
    return points, log_dir


def mix_benchmark(cfg: Config) -> int:
    """Part (b): ``tests/bench/recording_mix.py`` in its own process, which prints its own table."""
    args = QUICK_MIX_ARGS if cfg.quick else []
    print("\n# Recording benchmark (b): room mix against the ffmpeg CLI\n", flush=True)
    print(f"`{' '.join(['.venv/bin/python', MIX_BENCHMARK, *args])}`\n", flush=True)
    return subprocess.run([sys.executable, MIX_BENCHMARK, *args], cwd=ROOT).returncode


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    command = " ".join([".venv/bin/python", "tests/bench/recording.py", *(sys.argv[1:] if argv is None else argv)])
    load_start = os.getloadavg()[0]
    points, log_dir = asyncio.run(run(cfg))
    loads = (load_start, os.getloadavg()[0])
    summaries = summarize(points)
    results = targets(summaries, points)
    if cfg.json:
        report = {
            "command": command,
            "config": asdict(cfg),
            "load_average": loads,
            "points": [asdict(p) for p in points],
            "summaries": [asdict(s) for s in summaries],
            "targets": [asdict(t) for t in results],
        }
        print(json.dumps(report, indent=2))
    else:
        print(markdown(cfg, points, summaries, results, command, loads), flush=True)
    log(f"server logs: {log_dir}")
    status = exit_status(run_failed=any(p.error for p in points), results=results)
    if cfg.mix and not cfg.json:
        status = max(status, mix_benchmark(cfg))
    return status


if __name__ == "__main__":
    sys.exit(main())
