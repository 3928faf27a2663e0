"""Forwarding benchmark: the SFU's server CPU per subscriber leg, encoded passthrough vs MediaRelay.

What it measures
----------------
One publisher sends one video stream (640x480 at 30 fps) to a server
process; N subscribers play it. For each variant, codec and N, a fresh server
process (``tests/bench/forwarding_server.py``) is started and measured:

- ``passthrough``: the project's SFU core, ``rooms.media.peer.PublishedStream``
  and ``PlayedStream``: encoded frames are forwarded, never decoded or encoded;
- ``relay`` (the baseline): a minimal aiortc server that fans the publisher's
  decoded track out with ``aiortc.contrib.media.MediaRelay`` and encodes it
  again for every subscriber.

With ``--anchor janus`` a third variant, ``janus``, measures Janus VideoRoom
(Debian's ``janus``, C) under the same publisher and subscribers; Janus
ignores loopback devices, so the whole run re-executes itself inside a
network namespace it creates and deletes (``tests/bench/janus_anchor.py``;
needs root). Variants are interleaved: every variant at one N before the
next N. Each variant's per-leg cost is also reported as the least-squares
slope of server CPU over N, with the first-frame p50 over all its
subscribers; the targets then include "per-leg slope <= Janus's" and
"first frame p50 <= Janus's".

The publisher and the subscribers run in this (driver) process, the server in
its own, so its CPU (``/proc/PID/stat`` utime+stime, every thread) and RSS
(``/proc/PID/status`` VmRSS) are its alone. All media stays on 127.0.0.1
(``rooms.media.peer.use_host_address`` in both processes, no ICE servers); the
script checks every SDP's candidates. Signaling is JSON lines over the server's
stdin/stdout.

The publisher's video is synthetic: fresh luma noise (+-8 levels, like sensor
noise) every frame, a moving bar and a frame counter. Plain
``CounterVideoTrack`` content is so compressible that the encoder undershoots
far below its target. aiortc's encoders default to 500 kbit/s (VP8, moved
between 250 kbit/s and 1.5 Mbit/s by the receiver's REMB) and 1 Mbit/s (H.264,
500 kbit/s to 3 Mbit/s); the benchmark pins both, in the publisher and in the
baseline's per-subscriber encoders, to ``--bitrate`` (1 Mbit/s), and reports
the bitrate actually sent and received.

Subscribers do not decode: each installs ``rooms.media.tap.EncodedFrameTap`` on
its receiver and counts the encoded frames and bytes its receiver reassembles.
Decoding costs about 0.03 CPU-s/s per VP8 stream (the baseline's N=0 row minus
passthrough's): 16 decoders would add half a core to a 2-core machine that the
server, the publisher and the subscribers share. Subscribers join one after
another, each as soon as the previous one's answer is applied
(``--join-interval`` spaces them); then every subscriber waits for its first
frame (10 s at most), ``--warmup`` seconds pass, and the measurement window
(``--window``) runs.

Reported per codec, variant and N: server CPU-s/s, server RSS, per-leg CPU
``(cpu(N) - cpu(0)) / N`` and per-leg RSS likewise, the lowest subscriber frame
rate over the window, first-frame latency (from sending the play offer to the
subscriber's first frame; p50 and max over the subscribers), and the ratio
baseline/passthrough of the per-leg CPU. A second table gives the publisher's
frame rate and sent bitrate, the mean received bitrate, the driver's own CPU
(a saturated driver invalidates the run: check it) and the keyframe requests
the passthrough server sent to the publisher.

The baseline is measured for N <= ``--relay-max`` (8) only, by default: it
encodes once per subscriber and beyond that it is expected to saturate this
2-core machine (the publisher and the subscribers share it). Measured here:
H.264 costs it ~0.22 CPU-s/s per leg, so H.264 N=8 alone takes ~1.8 cores;
VP8 ~0.07 per leg, and VP8 N=16 took 1.18 CPU-s/s with the driver at 0.23,
still at 30 fps: close to, not at, saturation. H.264 runs the smaller set
``--h264-subscribers`` (0, 1, 4). N=0 is always measured: per-leg figures
need it.

Targets (printed PASS/FAIL; exit status 1 if any fails, 2 if the run failed):
passthrough per-leg CPU <= 0.015 CPU-s/s at every N; baseline/passthrough
per-leg CPU >= 8 at every N both measured; first frame p50 <= 0.3 s at every N;
RSS per leg <= 5 MB at the largest N of each codec (one-off allocations
dominate small N); no fps loss at the largest N of each codec (N=16 for VP8),
where ">= 28 fps" counts as no loss of the publisher's 30.

Run from the project root (nothing else needed: no Redis, no database)::

    .venv/bin/python tests/bench/forwarding.py
    .venv/bin/python tests/bench/forwarding.py --codec VP8 --subscribers 0,1,4 --window 5 --json

Flags: ``--subscribers`` ("0,1,4,8,16"), ``--h264-subscribers`` ("0,1,4"),
``--codec`` VP8|H264|both (both), ``--variants`` (passthrough,relay),
``--relay-max`` (8), ``--window`` seconds (10), ``--warmup`` seconds (3),
``--bitrate`` bit/s (1000000), ``--join-interval`` seconds (0), ``--audio``
(also publish a tone, Opus), ``--json`` (print JSON instead of Markdown),
``--anchor janus`` (add Janus VideoRoom, VP8 only).
Progress goes to stderr; the server logs to a temporary directory, named if a
run fails. The passthrough server caps the publisher as a media node does
(``ROOM_MAX_VIDEO_KBPS``, default 2500: above the pinned bitrate, so only
the REMBs' cost shows, counted in the details); ``ROOM_MAX_VIDEO_KBPS=0``
in the environment measures it without.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
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
from aiortc.codecs import h264, vpx  # noqa: E402

from rooms.media.peer import use_host_address, video_capabilities  # noqa: E402
from tests.bench.janus_anchor import NAMESPACE_ENV, JanusServer, run_in_namespace  # noqa: E402
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
    TexturedVideoTrack,
    check_loopback,
    close_all,
    cpu_seconds,
    join,
    peer_connection,
    rss_mb,
    wait_until,
)
from tests.media_tracks import ToneAudioTrack  # noqa: E402

VARIANTS = ("passthrough", "janus", "relay")
VARIANT_TITLES = {"passthrough": "passthrough", "janus": "Janus", "relay": "MediaRelay"}
CODECS = ("VP8", "H264")

CONNECT_TIMEOUT_S = 10.0
PUBLISH_SETTLE_S = 1.0

TARGET_LEG_CPU = 0.015
TARGET_RATIO = 8.0
TARGET_FIRST_FRAME_S = 0.3
TARGET_LEG_RSS_MB = 5.0


# --- Media ---------------------------------------------------------------------------------------------------------


def pin_encoder_bitrate(bitrate: int) -> None:
    """Pin aiortc's VP8 and H.264 encoders to ``bitrate``, whatever REMB says."""
    for module in (vpx, h264):
        for name in ("DEFAULT_BITRATE", "MIN_BITRATE", "MAX_BITRATE"):
            setattr(module, name, bitrate)


async def publish(server: ServerProcess, codec: str, audio: bool) -> tuple[RTCPeerConnection, TexturedVideoTrack]:
    pc = peer_connection()
    video = TexturedVideoTrack()
    pc.addTransceiver(video, direction="sendonly").setCodecPreferences(video_capabilities(codec))
    if audio:
        pc.addTransceiver(ToneAudioTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    check_loopback(pc.localDescription.sdp, "publisher offer")
    answer = (await server.request("publish", sdp=pc.localDescription.sdp))["sdp"]
    check_loopback(answer, "publish answer")
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    if not await wait_until(lambda: pc.connectionState == "connected", CONNECT_TIMEOUT_S):
        raise RuntimeError(f"the publisher did not connect ({pc.connectionState})")
    return pc, video


async def video_bytes_sent(pc: RTCPeerConnection) -> int:
    report = await pc.getStats()
    return sum(
        int(stats.bytesSent)
        for stats in report.values()
        if getattr(stats, "type", "") == "outbound-rtp" and getattr(stats, "kind", "") == "video"
    )


# --- One measurement -----------------------------------------------------------------------------------------------


@dataclass
class Config:
    subscribers: list[int]
    h264_subscribers: list[int]
    codecs: list[str]
    variants: list[str]
    relay_max: int
    window: float
    warmup: float
    bitrate: int
    join_interval: float
    audio: bool
    json: bool
    anchor: str | None = None


@dataclass
class Point:
    variant: str
    codec: str
    subscribers: int
    server_cpu: float = 0.0  # CPU-s/s over the window
    server_rss_mb: float = 0.0  # at the end of the window
    driver_cpu: float = 0.0
    publisher_fps: float = 0.0
    sent_kbps: float = 0.0  # the publisher's video RTP payload
    received_kbps: float | None = None  # mean over subscribers, reassembled encoded frames
    fps_min: float | None = None
    fps_mean: float | None = None
    audio_fps_min: float | None = None  # with --audio: Opus frames per second (50 sent)
    first_frame_p50_s: float | None = None
    first_frame_max_s: float | None = None
    without_frames: int = 0  # subscribers that never got a frame
    keyframe_requests: int | None = None  # passthrough: PLIs the server sent the publisher
    rembs: int | None = None  # passthrough: REMBs the server's bitrate cap sent (ROOM_MAX_VIDEO_KBPS)
    window_s: float = 0.0
    error: str | None = None
    per_leg_cpu: float | None = None
    per_leg_rss_mb: float | None = None
    first_frames_s: list[float] = field(default_factory=list)


async def measure(cfg: Config, variant: str, codec: str, count: int, log_dir: Path) -> Point:
    point = Point(variant, codec, count)
    log_path = log_dir / f"{variant}-{codec}-{count}.log"
    server: ServerProcess | JanusServer | None = None
    publisher: RTCPeerConnection | None = None
    subscribers: list[Subscriber] = []
    try:
        if variant == "janus":
            folder = log_dir / f"janus-{codec}-{count}"
            folder.mkdir()
            server = janus = await JanusServer.start(codec, cfg.bitrate, log_path, folder)
            publisher, video = await janus.publish(cfg.audio)
        else:
            server = await ServerProcess.start(variant, codec, cfg.bitrate, log_path)
            publisher, video = await publish(server, codec, cfg.audio)
        await asyncio.sleep(PUBLISH_SETTLE_S)
        for _ in range(count):
            subscribers.append(await (server.join(cfg.audio) if isinstance(server, JanusServer)
                                      else join(server, cfg.audio)))
            if cfg.join_interval:
                await asyncio.sleep(cfg.join_interval)
        await wait_until(lambda: all(s.first_frame_at is not None for s in subscribers), FIRST_FRAME_TIMEOUT_S)
        await asyncio.sleep(cfg.warmup)

        started = time.monotonic()
        server_cpu, driver_cpu = cpu_seconds(server.pid), cpu_seconds(os.getpid())
        frames = [s.frames for s in subscribers]
        received = [s.bytes for s in subscribers]
        sounds = [s.audio_frames for s in subscribers]
        published, sent = video.count, await video_bytes_sent(publisher)
        await asyncio.sleep(cfg.window)
        elapsed = time.monotonic() - started
        point.server_cpu = (cpu_seconds(server.pid) - server_cpu) / elapsed
        point.driver_cpu = (cpu_seconds(os.getpid()) - driver_cpu) / elapsed
        point.server_rss_mb = rss_mb(server.pid)
        point.publisher_fps = (video.count - published) / elapsed
        point.sent_kbps = (await video_bytes_sent(publisher) - sent) * 8 / elapsed / 1000
        point.window_s = elapsed

        if subscribers:
            rates = [(s.frames - before) / elapsed for s, before in zip(subscribers, frames, strict=True)]
            point.fps_min, point.fps_mean = min(rates), statistics.fmean(rates)
            point.received_kbps = statistics.fmean(
                (s.bytes - before) * 8 / elapsed / 1000 for s, before in zip(subscribers, received, strict=True)
            )
            if cfg.audio:
                point.audio_fps_min = min(
                    (s.audio_frames - before) / elapsed for s, before in zip(subscribers, sounds, strict=True)
                )
            latencies = [s.first_frame_s for s in subscribers if s.first_frame_s is not None]
            point.first_frames_s = latencies
            point.without_frames = len(subscribers) - len(latencies)
            if latencies:
                point.first_frame_p50_s, point.first_frame_max_s = statistics.median(latencies), max(latencies)
        if variant == "passthrough" and isinstance(server, ServerProcess):
            stats = await server.request("stats")
            point.keyframe_requests = int(stats["keyframe_requests_sent"])
            point.rembs = int(stats["remb_sent"])
    except Exception as error:
        point.error = f"{type(error).__name__}: {error}"
        if str(log_path) not in point.error:
            point.error += f" (server log: {log_path})"
        log(traceback.format_exc())
    finally:
        await close_all([s.pc for s in subscribers])
        if publisher is not None:
            await close_all([publisher])
        if server is not None:
            await server.stop()
    return point


# --- The run -------------------------------------------------------------------------------------------------------


def plan(cfg: Config) -> list[tuple[str, str, int]]:
    """Every (variant, codec, N), interleaved: all variants at one N before the next N,
    so a drift in the shared machine's load hits every variant alike."""
    points = []
    for codec in cfg.codecs:
        counts = cfg.subscribers if codec == "VP8" else cfg.h264_subscribers
        for count in counts:
            for variant in cfg.variants:
                if variant == "relay" and count > cfg.relay_max:
                    continue
                if variant == "janus" and codec != "VP8":
                    continue  # the anchor's room is VP8, as the notes measured it
                points.append((variant, codec, count))
    return points


def slope(points: list[Point], variant: str, codec: str) -> float | None:
    """Server CPU-s/s per subscriber leg: the least-squares slope of CPU over N."""
    pairs = [(p.subscribers, p.server_cpu) for p in points
             if p.variant == variant and p.codec == codec and p.error is None]
    if len({n for n, _ in pairs}) < 2:
        return None
    mean_n = statistics.fmean(n for n, _ in pairs)
    mean_cpu = statistics.fmean(cpu for _, cpu in pairs)
    return sum((n - mean_n) * (cpu - mean_cpu) for n, cpu in pairs) / sum((n - mean_n) ** 2 for n, _ in pairs)


def first_frame_p50(points: list[Point], variant: str, codec: str) -> float | None:
    """First-frame latency p50 over every subscriber of every N."""
    latencies = [s for p in points if p.variant == variant and p.codec == codec for s in p.first_frames_s]
    return statistics.median(latencies) if latencies else None


def add_per_leg(points: list[Point]) -> None:
    base = {(p.variant, p.codec): p for p in points if p.subscribers == 0 and p.error is None}
    for point in points:
        zero = base.get((point.variant, point.codec))
        if point.subscribers and zero is not None and point.error is None:
            point.per_leg_cpu = (point.server_cpu - zero.server_cpu) / point.subscribers
            point.per_leg_rss_mb = (point.server_rss_mb - zero.server_rss_mb) / point.subscribers


def ratio(points: list[Point], codec: str, count: int) -> float | None:
    """Baseline per-leg CPU / passthrough's; None if either is missing or passthrough's is below resolution."""
    by_variant = {p.variant: p for p in points if p.codec == codec and p.subscribers == count}
    passthrough, relay = by_variant.get("passthrough"), by_variant.get("relay")
    if passthrough is None or relay is None or passthrough.per_leg_cpu is None or relay.per_leg_cpu is None:
        return None
    # CPU times come in clock ticks: below one tick per window the per-leg figure is noise.
    resolution = 1 / (CLOCK_TICKS * passthrough.window_s * count)
    if passthrough.per_leg_cpu < resolution:
        return None
    return relay.per_leg_cpu / passthrough.per_leg_cpu


def targets(cfg: Config, points: list[Point]) -> list[Target]:
    ours = [p for p in points if p.variant == "passthrough" and p.subscribers > 0]
    largest = {codec: max((p.subscribers for p in ours if p.codec == codec), default=0) for codec in cfg.codecs}
    at_largest = [p for p in ours if p.subscribers == largest[p.codec]]
    results = []

    def where(p: Point) -> str:
        return f"{p.codec} N={p.subscribers}"

    legs = [(p.per_leg_cpu, where(p)) for p in ours]
    worst = max((value for value, _ in legs if value is not None), default=None)
    results.append(
        Target(
            f"passthrough per-leg CPU <= {TARGET_LEG_CPU} CPU-s/s at every N",
            "-" if worst is None else f"max {worst:.4f}",
            None if not legs else all(v is not None and v <= TARGET_LEG_CPU for v, _ in legs),
            [w for v, w in legs if v is None or v > TARGET_LEG_CPU],
        )
    )
    ratios = [
        (ratio(points, p.codec, p.subscribers), where(p))
        for p in ours
        if any(q.variant == "relay" and q.codec == p.codec and q.subscribers == p.subscribers for q in points)
    ]
    lowest = min((value for value, _ in ratios if value is not None), default=None)
    results.append(
        Target(
            f"MediaRelay per-leg CPU / passthrough per-leg CPU >= {TARGET_RATIO:g} at every N both measured",
            "-" if lowest is None else f"min {lowest:.1f}x",
            None if not ratios else all(v is not None and v >= TARGET_RATIO for v, _ in ratios),
            [w for v, w in ratios if v is None or v < TARGET_RATIO],
        )
    )
    firsts = [(p.first_frame_p50_s if not p.without_frames else None, where(p)) for p in ours]
    slowest = max((value for value, _ in firsts if value is not None), default=None)
    results.append(
        Target(
            f"passthrough first frame p50 <= {TARGET_FIRST_FRAME_S} s at every N (and every subscriber gets one)",
            "-" if slowest is None else f"max p50 {slowest:.3f} s",
            None if not firsts else all(v is not None and v <= TARGET_FIRST_FRAME_S for v, _ in firsts),
            [w for v, w in firsts if v is None or v > TARGET_FIRST_FRAME_S],
        )
    )
    rss = [(p.per_leg_rss_mb, where(p)) for p in at_largest]
    biggest = max((value for value, _ in rss if value is not None), default=None)
    results.append(
        Target(
            f"passthrough RSS per leg <= {TARGET_LEG_RSS_MB:g} MB at the largest N of each codec",
            "-" if biggest is None else f"max {biggest:.2f} MB",
            None if not rss else all(v is not None and v <= TARGET_LEG_RSS_MB for v, _ in rss),
            [w for v, w in rss if v is None or v > TARGET_LEG_RSS_MB],
        )
    )
    rates = [(p.fps_min, where(p)) for p in at_largest]
    lowest_fps = min((value for value, _ in rates if value is not None), default=None)
    results.append(
        Target(
            f"no fps loss at the largest N of each codec: every subscriber >= {TARGET_FPS:g} fps "
            f"(the publisher sends {FPS}; {TARGET_FPS:g} counts as no loss)",
            "-" if lowest_fps is None else f"min {lowest_fps:.1f} fps",
            None if not rates else all(v is not None and v >= TARGET_FPS for v, _ in rates),
            [w for v, w in rates if v is None or v < TARGET_FPS],
        )
    )
    if cfg.anchor == "janus":
        our_slope, janus_slope = slope(points, "passthrough", "VP8"), slope(points, "janus", "VP8")
        results.append(
            Target(
                "passthrough per-leg slope <= Janus's (VP8, least squares over N, same run)",
                "-" if our_slope is None or janus_slope is None else f"{our_slope:.4f} vs {janus_slope:.4f} CPU-s/s",
                None if our_slope is None or janus_slope is None else our_slope <= janus_slope,
                [],
            )
        )
        our_p50, janus_p50 = first_frame_p50(points, "passthrough", "VP8"), first_frame_p50(points, "janus", "VP8")
        results.append(
            Target(
                "passthrough first frame p50 <= Janus's (VP8, every subscriber of every N)",
                "-" if our_p50 is None or janus_p50 is None else f"{our_p50:.3f} vs {janus_p50:.3f} s",
                None if our_p50 is None or janus_p50 is None else our_p50 <= janus_p50,
                [],
            )
        )
    return results


def slopes_markdown(cfg: Config, points: list[Point]) -> list[str]:
    lines = [
        "## Per-leg slopes (least squares of server CPU over N, this run)",
        "",
        "| codec | variant | per-leg slope CPU-s/s | first frame p50 s (all subscribers) | slope / passthrough's |",
        "|---|---|---|---|---|",
    ]
    for codec in cfg.codecs:
        ours = slope(points, "passthrough", codec)
        for variant in cfg.variants:
            value = slope(points, variant, codec)
            if value is None:
                continue
            relative = "-" if ours is None or ours <= 0 else f"{value / ours:.2f}"
            lines.append(f"| {codec} | {VARIANT_TITLES[variant]} | {value:.4f} "
                         f"| {fmt(first_frame_p50(points, variant, codec))} | {relative} |")
    return [*lines, ""]


def markdown(cfg: Config, points: list[Point], results: list[Target], command: str) -> str:
    lines = [
        "# Forwarding benchmark: server CPU per subscriber leg",
        "",
        f"`{command}`",
        "",
        f"One publisher, {WIDTH}x{HEIGHT}@{FPS}, encoder pinned at {cfg.bitrate / 1000:g} kbit/s "
        "(aiortc's defaults: VP8 500 kbit/s, H.264 1000 kbit/s, moved by REMB); "
        f"{'video and Opus audio' if cfg.audio else 'video only'}. Fresh server process per row; "
        f"{cfg.warmup:g} s warm-up after the last subscriber's first frame, then a {cfg.window:g} s window. "
        "CPU is the server process's utime+stime per second (resolution 1/CLK_TCK s per window: "
        f"{1 / (CLOCK_TICKS * cfg.window):.4f} CPU-s/s); per leg = (value(N) - value(0)) / N. "
        "Subscribers count encoded frames (no decoding). First frame: play offer sent -> first frame "
        "received, p50 / max over the subscribers.",
        "",
    ]
    if "relay" in cfg.variants:
        lines += [
            f"MediaRelay baseline measured for N <= {cfg.relay_max} only (`--relay-max`): it encodes once per "
            "subscriber, and beyond that it is expected to saturate this 2-core machine, which the publisher "
            "and the subscribers share (H.264 ~0.22 CPU-s/s per leg; VP8 ~0.07, reaching ~1.2 CPU-s/s at N=16).",
            "",
        ]
    for codec in cfg.codecs:
        rows = [p for p in points if p.codec == codec]
        if not rows:
            continue
        lines += [f"## {codec}", ""]
        header = ["N"]
        for variant in cfg.variants:
            title = VARIANT_TITLES[variant]
            header += [
                f"{title} CPU-s/s",
                "per leg",
                "RSS MB",
                "RSS/leg MB",
                "fps min",
                "first frame p50 / max s",
            ]
        with_ratio = "passthrough" in cfg.variants and "relay" in cfg.variants
        if with_ratio:
            header.append("MediaRelay / passthrough per leg")
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for count in sorted({p.subscribers for p in rows}):
            cells = [str(count)]
            for variant in cfg.variants:
                point = next((p for p in rows if p.variant == variant and p.subscribers == count), None)
                if point is None:
                    cells += ["not run"] + [""] * 5
                elif point.error is not None:
                    cells += ["failed"] + [""] * 5
                else:
                    first = (
                        "-"
                        if point.first_frame_p50_s is None
                        else (f"{point.first_frame_p50_s:.3f} / {fmt(point.first_frame_max_s)}")
                    )
                    if point.without_frames:
                        first += f" ({point.without_frames} without frames)"
                    cells += [
                        fmt(point.server_cpu),
                        fmt(point.per_leg_cpu, 4),
                        fmt(point.server_rss_mb, 1),
                        fmt(point.per_leg_rss_mb, 2),
                        fmt(point.fps_min, 1),
                        first,
                    ]
            if with_ratio:
                value = ratio(points, codec, count)
                cells.append("-" if value is None else f"{value:.1f}x")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += slopes_markdown(cfg, points)
    lines += [
        "## Details",
        "",
        "| variant | codec | N | publisher fps | sent kbit/s | received kbit/s (mean) | fps mean "
        "| audio fps min | driver CPU-s/s | PLIs to publisher | REMBs to publisher | error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        lines.append(
            f"| {VARIANT_TITLES[p.variant]} | {p.codec} | {p.subscribers} | {p.publisher_fps:.1f} | {p.sent_kbps:.0f} "
            f"| {fmt(p.received_kbps, 0)} | {fmt(p.fps_mean, 1)} | {fmt(p.audio_fps_min, 1)} | {p.driver_cpu:.3f} "
            f"| {'-' if p.keyframe_requests is None else p.keyframe_requests} "
            f"| {'-' if p.rembs is None else p.rembs} | {p.error or ''} |"
        )
    lines += ["", *targets_markdown(results)]
    return "\n".join(lines)


def parse_counts(text: str) -> list[int]:
    """Subscriber counts, N=0 always included: per-leg figures subtract it."""
    counts = sorted({0} | {int(part) for part in text.split(",") if part.strip()})
    if any(count < 0 for count in counts):
        raise argparse.ArgumentTypeError("subscriber counts must be >= 0")
    return counts


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--subscribers", type=parse_counts, default=parse_counts("0,1,4,8,16"))
    parser.add_argument("--h264-subscribers", type=parse_counts, default=parse_counts("0,1,4"))
    parser.add_argument("--codec", choices=("VP8", "H264", "both"), default="both")
    parser.add_argument("--variants", default="passthrough,relay", help="comma-separated: passthrough, janus, relay")
    parser.add_argument("--relay-max", type=int, default=8, help="largest N for the MediaRelay baseline")
    parser.add_argument("--window", type=float, default=10.0, help="measurement window, seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the first frames, unmeasured")
    parser.add_argument("--bitrate", type=int, default=1_000_000, help="encoders' bitrate, bit/s")
    parser.add_argument("--join-interval", type=float, default=0.0, help="seconds between two subscribers' joins")
    parser.add_argument("--audio", action="store_true", help="also publish and forward a tone (Opus)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--anchor", choices=("janus",), default=None,
                        help="also measure Janus VideoRoom, side by side (runs in a network namespace; root)")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.anchor == "janus" and "janus" not in variants:
        variants.append("janus")
    if not variants or any(v not in VARIANTS for v in variants):
        parser.error(f"--variants takes a comma-separated subset of {', '.join(VARIANTS)}")
    if args.window <= 0 or args.warmup < 0 or args.join_interval < 0:
        parser.error("--window must be > 0, --warmup and --join-interval >= 0")
    return Config(
        subscribers=args.subscribers,
        h264_subscribers=args.h264_subscribers,
        codecs=list(CODECS) if args.codec == "both" else [args.codec],
        variants=[v for v in VARIANTS if v in variants],
        relay_max=args.relay_max,
        window=args.window,
        warmup=args.warmup,
        bitrate=args.bitrate,
        join_interval=args.join_interval,
        audio=args.audio,
        json=args.json,
        anchor=args.anchor,
    )


async def run(cfg: Config) -> list[Point]:
    use_host_address(HOST)
    pin_encoder_bitrate(cfg.bitrate)
    log_dir = Path(tempfile.mkdtemp(prefix="forwarding-bench-"))
    points = []
    todo = plan(cfg)
    for index, (variant, codec, count) in enumerate(todo, 1):
        log(f"[{index}/{len(todo)}] {VARIANT_TITLES[variant]} {codec} N={count} ...")
        point = await measure(cfg, variant, codec, count, log_dir)
        log(
            f"    server {point.server_cpu:.3f} CPU-s/s, {point.server_rss_mb:.1f} MB, "
            f"fps min {fmt(point.fps_min, 1)}, "
            f"first frame p50 {fmt(point.first_frame_p50_s)} s, sent {point.sent_kbps:.0f} kbit/s, "
            f"driver {point.driver_cpu:.3f} CPU-s/s" + (f", ERROR {point.error}" if point.error else "")
        )
        points.append(point)
    log(f"server logs: {log_dir}")
    return points


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    if "janus" in cfg.variants and not os.environ.get(NAMESPACE_ENV):
        return run_in_namespace(sys.argv[1:] if argv is None else list(argv))
    command = " ".join([".venv/bin/python", "tests/bench/forwarding.py", *(sys.argv[1:] if argv is None else argv)])
    points = asyncio.run(run(cfg))
    add_per_leg(points)
    results = targets(cfg, points)
    if cfg.json:
        print(
            json.dumps(
                {
                    "command": command,
                    "config": asdict(cfg),
                    "points": [asdict(p) for p in points],
                    "ratios": {
                        f"{p.codec} N={p.subscribers}": ratio(points, p.codec, p.subscribers)
                        for p in points
                        if p.variant == "relay" and p.subscribers
                    },
                    "targets": [asdict(t) for t in results],
                },
                indent=2,
            )
        )
    else:
        print(markdown(cfg, points, results, command))
    return exit_status(run_failed=any(p.error for p in points), results=results)


if __name__ == "__main__":
    sys.exit(main())
