"""Audio stems benchmark: ``recording.stems`` against the ffmpeg CLI doing the same.

What it measures
----------------
A room of four participants, each with one synthetic stream record
(320x240 VP8 at 15 fps + Opus, beeps every 2 s) of ``--duration`` seconds
(default 600), starting 0, 20, 40 and 60 s after the first, so every stem
has leading silence and the room lasts ``duration + 60`` s. Each variant
writes one mono 48 kHz 16-bit FLAC per participant, of the room's length,
aligned to its start, and stores them in a ZIP:

- ``ffmpeg`` (the anchor): per participant, the ffmpeg CLI::

      ffmpeg -i record.webm -vn -af "adelay=<start ms>:all=1,apad,atrim=0:<room s>,
        pan=mono|c0=0.5*c0+0.5*c1" -ar 48000 -sample_fmt s16 -c:a flac <participant>.flac

  the four commands run by a small driver, as many at once as there are
  cores, then stored into a ZIP with ``zipfile``;
- ``stems``: ``recording.stems.room_stems_render`` on the records' sidecars
  (PyAV, one thread per participant up to the core count), which also reads
  the sidecars and undoes the audio's arrival offset as the mixer does.

Each run is its own process, timed the same way: wall clock, and user +
system CPU from ``os.wait4`` (the process, its threads and the children it
waited for). Runs alternate (ffmpeg, stems, stems, ffmpeg, ...) so load from
other users of a shared machine falls on both alike; the 1-minute load
average is printed before and after. Both outputs are checked: four FLAC
files of the room's length (within 0.05 s, ffprobe).

Inputs are generated once into ``--inputs`` (default
``var/bench/recording_stems``) and reused.

Target (PASS/FAIL; exit status 1 if it fails): ratio ffmpeg wall / stems
wall >= 1.0.

Run from the project root::

    .venv/bin/python tests/bench/recording_stems.py
    .venv/bin/python tests/bench/recording_stems.py --repeats 2 --duration 60
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
from tests.bench.report import Target, exit_status, log, targets_markdown  # noqa: E402
from tests.recording.synthetic import DEFAULT_STARTED_AT_MS, SyntheticRecord, synthetic_record_write  # noqa: E402

PARTICIPANTS = ("alice", "bob", "carol", "dave")
STAGGER_S = 20
TARGET_RATIO = 1.0
DURATION_TOLERANCE_S = 0.05

STEMS_SNIPPET = """
import sys
from pathlib import Path
from recording.stems import room_stems_render
room_stems_render([Path(p) for p in sys.argv[2:]], Path(sys.argv[1]))
"""
# argv: output zip, room seconds, then (participant, media path, start ms) triples.
FFMPEG_SNIPPET = """
import os, subprocess, sys, tempfile, zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
output, room_s, rest = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
jobs = [rest[i:i + 3] for i in range(0, len(rest), 3)]
with tempfile.TemporaryDirectory(dir=output.parent) as folder:
    def run(job):
        name, media, start_ms = job
        target = Path(folder) / f"{name}.flac"
        subprocess.run(["ffmpeg", "-y", "-nostdin", "-loglevel", "error", "-i", media, "-vn", "-af",
                        f"adelay={start_ms}:all=1,apad,atrim=0:{room_s},pan=mono|c0=0.5*c0+0.5*c1",
                        "-ar", "48000", "-sample_fmt", "s16", "-c:a", "flac", str(target)], check=True)
        return target
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        paths = list(pool.map(run, jobs))
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in paths:
            archive.write(path, arcname=path.name)
"""


@dataclass(frozen=True)
class Run:
    variant: str
    wall_s: float
    cpu_s: float


@dataclass(frozen=True)
class Input:
    participant: str
    sidecar: Path
    media: Path
    start_ms: int


def inputs_ensure(folder: Path, duration_s: float) -> list[Input]:
    inputs = []
    for index, name in enumerate(PARTICIPANTS):
        stream = f"stems-{name}-{duration_s:g}s"
        sidecar = folder / f"{stream}.json"
        start_ms = index * STAGGER_S * 1000
        if not sidecar.exists():
            log(f"generating {stream} ({duration_s:g} s)")
            synthetic_record_write(folder, SyntheticRecord(
                stream=stream, participant=name, duration_s=duration_s, fps=15,
                beep_times_s=tuple(range(1, int(duration_s), 2)), started_at_ms=DEFAULT_STARTED_AT_MS + start_ms,
            ))
        inputs.append(Input(name, sidecar, folder / f"{stream}.webm", start_ms))
    return inputs


def timed(command: Sequence[str]) -> tuple[float, float]:
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if code != 0:
        raise RuntimeError(f"{command[:3]} failed ({code}): {errors[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def run_variant(variant: str, inputs: Sequence[Input], room_s: float, output: Path) -> Run:
    if variant == "stems":
        command = [sys.executable, "-c", STEMS_SNIPPET, str(output), *(str(item.sidecar) for item in inputs)]
    else:
        triples = [str(part) for item in inputs for part in (item.participant, item.media, item.start_ms)]
        command = [sys.executable, "-c", FFMPEG_SNIPPET, str(output), f"{room_s:.3f}", *triples]
    wall, cpu = timed(command)
    return Run(variant, wall, cpu)


def stem_durations(archive: Path, folder: Path) -> list[float]:
    import zipfile

    with zipfile.ZipFile(archive) as opened:
        opened.extractall(folder)
        names = sorted(opened.namelist())
    durations = []
    for name in names:
        completed = subprocess.run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(folder / name)],
            check=True, capture_output=True, text=True,
        )
        stream = json.loads(completed.stdout)["streams"][0]
        assert stream["codec_name"] == "flac" and stream["channels"] == 1, stream
        durations.append(float(stream["duration"]))
    return durations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of each record")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each variant")
    parser.add_argument("--inputs", type=Path, default=ROOT / "var" / "bench" / "recording_stems")
    args = parser.parse_args()
    args.inputs.mkdir(parents=True, exist_ok=True)
    inputs = inputs_ensure(args.inputs, args.duration)
    room_s = args.duration + (len(PARTICIPANTS) - 1) * STAGGER_S
    load_before = os.getloadavg()[0]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as scratch:
        order = ["ffmpeg", "stems"]
        for repeat in range(args.repeats):
            for variant in order if repeat % 2 == 0 else order[::-1]:
                output = Path(scratch) / f"{variant}-{repeat}.zip"
                run = run_variant(variant, inputs, room_s, output)
                log(f"{variant}: {run.wall_s:.2f} s wall, {run.cpu_s:.2f} s CPU")
                durations = stem_durations(output, Path(scratch) / f"{variant}-{repeat}")
                assert len(durations) == len(PARTICIPANTS), durations
                assert all(abs(value - room_s) <= DURATION_TOLERANCE_S for value in durations), (variant, durations)
                runs.append(run)
    load_after = os.getloadavg()[0]
    wall = {variant: statistics.median(r.wall_s for r in runs if r.variant == variant) for variant in order}
    cpu = {variant: statistics.median(r.cpu_s for r in runs if r.variant == variant) for variant in order}
    ratio = wall["ffmpeg"] / wall["stems"]
    print(f"# Audio stems: {len(PARTICIPANTS)} participants, records of {args.duration:g} s, room of {room_s:g} s\n")
    print(f"{os.cpu_count()} cores; 1-minute load average {load_before:.2f} before, {load_after:.2f} after; "
          f"{args.repeats} runs each, interleaved.\n")
    print("| variant | median wall (s) | median CPU (s) | realtime factor |")
    print("| --- | --- | --- | --- |")
    for variant in order:
        print(f"| {variant} | {wall[variant]:.2f} | {cpu[variant]:.2f} | {room_s / wall[variant]:.0f}x |")
    print(f"\nratio ffmpeg wall / stems wall: {ratio:.2f}; CPU ratio ffmpeg / stems: "
          f"{cpu['ffmpeg'] / cpu['stems']:.2f}\n")
    results = [Target("stems no slower than the ffmpeg CLI (wall ratio >= 1)", f"{ratio:.2f}", ratio >= TARGET_RATIO)]
    print("\n".join(targets_markdown(results)))
    return exit_status(run_failed=False, results=results)


if __name__ == "__main__":
    sys.exit(main())
