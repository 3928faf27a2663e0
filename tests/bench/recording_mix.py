"""Room mix benchmark: this project's mixer against the reference's ffmpeg merge command.

What it measures
----------------
Two synthetic 60 s stream records, 640x480 VP8 at 30 fps + Opus, both
starting at the same instant, are mixed side by side into one H.264 + AAC
MP4, 1280x480, by:

- ``ffmpeg`` (the baseline): the reference's merge command, run by the ffmpeg
  CLI::

      ffmpeg -i stream1 -i stream2 -filter_complex
        "[0:v]pad=iw*2:ih[int];[int][1:v]overlay=W/2:0[vid];[0:a][1:a]amerge[a]"
        -map [vid] -map [a] -ac 2 -strict -2 -c:v libx264 -crf 23 -preset veryfast output.mp4

- ``mixer``: ``recording.mixing.room_mix`` on the records' sidecars, names
  off (the CLI draws none), producing the same geometry with the same
  encoder settings (libx264, crf 23, veryfast). It runs x264's lookahead on
  two threads (``recording.mixing.x264_lookahead_threads``), a threading
  setting that leaves the output's settings as they are. With ``--chat N``
  it also writes N chat messages, spread over the records, as a mov_text
  subtitle track (what a room's public chat becomes); the CLI has none.

Each run is its own process, timed the same way: wall clock, and user +
system CPU from ``os.wait4`` (all threads). Runs alternate between the two
(ffmpeg, mixer, mixer, ffmpeg, ...) so load from other users of a shared
machine falls on both alike; the 1-minute load average is printed before and
after. Both variants spend about the same CPU (libx264 is ~85% of it), so
wall times on a busy machine mostly measure the scheduler: compare runs made
at a load average below the core count, and the CPU ratio.

Reported per variant: median wall time, CPU time and realtime factor (media
seconds per wall second); then the CPU ratio and the ratio ffmpeg wall /
mixer wall. Both outputs are checked with ffprobe: same size, h264 + aac,
same duration (within 0.1 s).

The inputs' video is textured like a camera (luma noise of +-8 levels and a
moving bar): flat synthetic colour would make the encoder's work, which
dominates both variants, unrealistically small. They are generated once
(~30 s) into ``--inputs`` (default ``var/bench/recording_mix``) and reused.

Target (printed PASS/FAIL; exit status 1 if it fails): ratio >= 1.0, the
mixer takes no longer than the ffmpeg CLI.

Run from the project root::

    .venv/bin/python tests/bench/recording_mix.py
    .venv/bin/python tests/bench/recording_mix.py --repeats 1 --duration 20
    .venv/bin/python tests/bench/recording_mix.py --repeats 2 --duration 20 --chat 1200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make recording and tests importable
    sys.path.insert(0, str(ROOT))

# isort: split
from tests.bench.report import log  # noqa: E402
from tests.recording.synthetic import SyntheticRecord, synthetic_record_write  # noqa: E402

WIDTH, HEIGHT = 640, 480
TARGET_RATIO = 1.0
# amerge + AAC padding make the CLI's output ~20 ms longer than its inputs.
DURATION_TOLERANCE_S = 0.1
REFERENCE_FILTER = "[0:v]pad=iw*2:ih[int];[int][1:v]overlay=W/2:0[vid];[0:a][1:a]amerge[a]"
# argv: output, chat message count, sidecars. The messages are spread evenly over the records.
MIXER_SNIPPET = """
import sys
from pathlib import Path
from recording.mixer_config import MixerConfig
from recording.mixing import room_mix
from recording.sidecar import sidecar_read
from recording.subtitles import ChatLine
sidecars = [Path(p) for p in sys.argv[3:]]
count, first = int(sys.argv[2]), sidecar_read(sidecars[0])
span_ms = first.ended_at_ms - first.started_at_ms
chat = [ChatLine(f"m{i}", "alice", f"message {i}: Привет 👋 你好", round(first.started_at_ms + i * span_ms / count))
        for i in range(count)]
room_mix(sidecars, Path(sys.argv[1]), MixerConfig(display_stream_name=False), chat=chat)
"""


@dataclass(frozen=True)
class Run:
    variant: str
    wall_s: float
    cpu_s: float


def inputs_ensure(folder: Path, duration_s: float) -> list[Path]:
    """Two records (sidecar paths), generated unless already there for this duration."""
    sidecars = []
    for index, (name, colour) in enumerate((("alice", (200, 60, 60)), ("bob", (60, 60, 200)))):
        stream = f"bench-{index}-{duration_s:g}s"
        sidecar = folder / f"{stream}.json"
        if not sidecar.exists():
            log(f"generating {stream} ({duration_s:g} s, {WIDTH}x{HEIGHT})")
            record = SyntheticRecord(
                stream=stream, participant=name, colour=colour, width=WIDTH, height=HEIGHT,
                duration_s=duration_s, textured=True, beep_times_s=tuple(range(1, int(duration_s), 2)),
            )
            synthetic_record_write(folder, record)
        sidecars.append(sidecar)
    return sidecars


def timed(command: Sequence[str]) -> tuple[float, float]:
    """Run a command to completion; (wall seconds, CPU seconds of the process and all its threads)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({process.returncode}): {errors[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def run_ffmpeg(media: Sequence[Path], output: Path) -> Run:
    wall, cpu = timed([
        "ffmpeg", "-y", "-nostdin", "-loglevel", "error", "-i", str(media[0]), "-i", str(media[1]),
        "-filter_complex", REFERENCE_FILTER, "-map", "[vid]", "-map", "[a]", "-ac", "2", "-strict", "-2",
        "-c:v", "libx264", "-crf", "23", "-preset", "veryfast", str(output),
    ])
    return Run("ffmpeg", wall, cpu)


def run_mixer(sidecars: Sequence[Path], output: Path, chat: int) -> Run:
    wall, cpu = timed([sys.executable, "-c", MIXER_SNIPPET, str(output), str(chat), *map(str, sidecars)])
    return Run("mixer", wall, cpu)


def probe(path: Path) -> dict[str, object]:
    completed = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
        check=True, capture_output=True, text=True,
    )
    data = json.loads(completed.stdout)
    streams = {stream["codec_type"]: stream for stream in data["streams"]}
    return {
        "size": f"{streams['video']['width']}x{streams['video']['height']}",
        "codecs": f"{streams['video']['codec_name']}+{streams['audio']['codec_name']}",
        "duration_s": round(float(data["format"]["duration"]), 2),
        "bytes": int(data["format"]["size"]),
    }


def load_average() -> float:
    return os.getloadavg()[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant (3)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per record (60)")
    parser.add_argument("--inputs", type=Path, default=ROOT / "var" / "bench" / "recording_mix")
    parser.add_argument("--chat", type=int, default=0, help="chat messages the mixer puts in a subtitle track (0)")
    args = parser.parse_args(argv)

    args.inputs.mkdir(parents=True, exist_ok=True)
    sidecars = inputs_ensure(args.inputs, args.duration)
    media = [sidecar.with_suffix(".webm") for sidecar in sidecars]
    runs: list[Run] = []
    outputs: dict[str, dict[str, object]] = {}
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="recording-mix-bench-") as scratch:
        for repeat in range(args.repeats):
            order = ("ffmpeg", "mixer") if repeat % 2 == 0 else ("mixer", "ffmpeg")
            for variant in order:
                output = Path(scratch) / f"{variant}-{repeat}.mp4"
                run = run_ffmpeg(media, output) if variant == "ffmpeg" else run_mixer(sidecars, output, args.chat)
                log(f"run {repeat + 1}/{args.repeats} {variant}: wall {run.wall_s:.2f} s, cpu {run.cpu_s:.2f} s")
                runs.append(run)
                outputs[variant] = probe(output)
    load_after = load_average()

    print(
        f"Room mix, two {args.duration:g} s {WIDTH}x{HEIGHT} records, {args.chat} chat messages,"
        f" {args.repeats} runs each, {os.cpu_count()} CPUs,"
        f" load average {load_before:.2f} before, {load_after:.2f} after"
    )
    print()
    print("| variant | wall s (median) | wall s (runs) | CPU s (median) | realtime factor | output |")
    print("| --- | --- | --- | --- | --- | --- |")
    medians, cpu_medians = {}, {}
    for variant in ("ffmpeg", "mixer"):
        walls = [run.wall_s for run in runs if run.variant == variant]
        cpus = [run.cpu_s for run in runs if run.variant == variant]
        medians[variant], cpu_medians[variant] = statistics.median(walls), statistics.median(cpus)
        output = outputs[variant]
        print(
            f"| {variant} | {medians[variant]:.2f} | {', '.join(f'{wall:.2f}' for wall in walls)} "
            f"| {statistics.median(cpus):.2f} | {args.duration / medians[variant]:.2f}x "
            f"| {output['size']} {output['codecs']} {output['duration_s']} s {output['bytes'] / 1e6:.1f} MB |"
        )
    ratio = medians["ffmpeg"] / medians["mixer"]
    same_shape = all(outputs["ffmpeg"][key] == outputs["mixer"][key] for key in ("size", "codecs")) and abs(
        float(outputs["ffmpeg"]["duration_s"]) - float(outputs["mixer"]["duration_s"])  # type: ignore[arg-type]
    ) <= DURATION_TOLERANCE_S
    passed = ratio >= TARGET_RATIO and same_shape
    print()
    print(f"CPU ffmpeg / mixer: {cpu_medians['ffmpeg'] / cpu_medians['mixer']:.2f}")
    print(
        f"ratio ffmpeg wall / mixer wall: {ratio:.2f} (target >= {TARGET_RATIO:.1f}); "
        f"same geometry, codecs and duration: {'yes' if same_shape else 'NO'}: {'PASS' if passed else 'FAIL'}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
