"""Per-participant audio stems of a room: one FLAC file per participant, all
of the room's length and on the room mix's clock, in one ZIP.

Each stem starts at the room's time 0 (where the mix starts: the earliest
media start of its stream records) and lasts as long as the room's records
do, with digital silence wherever the participant was absent or not
recorded, so the files line up in any editor with each other and with the
mix. A participant's records (a camera, a screen with sound, a reconnection)
are placed exactly as the mixer places them (``recording.mixing``: the
sidecar's start, and the sender-report correction of the audio against the
video) and summed.

Decoding goes through ``recording.mix_sources.AudioSource`` (PyAV, which
releases the GIL while decoding and encoding), one thread per participant;
the FLAC files are stored in the ZIP as they are (they are compressed
already). tests/bench/recording_stems.py compares this with the ffmpeg CLI
doing the same.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from recording.mix_sources import MIX_SAMPLE_RATE, AudioSource
from recording.mixing import MixError, MixRecord, mix_records_read

# One second of samples per read: large enough that Python's share is
# negligible, small enough that a 16-participant room holds little memory.
BLOCK_SAMPLES = MIX_SAMPLE_RATE
FLAC_COMPRESSION_LEVEL = 5  # the encoder's default: speech barely gains from more


@dataclass(frozen=True)
class Stem:
    participant: str
    file_name: str  # inside the ZIP
    records: int  # how many of the participant's records carry audio


@dataclass(frozen=True)
class StemsResult:
    stems: tuple[Stem, ...]
    duration_ms: int
    media_started_at_ms: float  # the stems' time 0 on the server clock (epoch ms), as the mix's


def stem_file_name(participant: str, taken: set[str]) -> str:
    """A file name for a participant's stem, unique within the ZIP whatever the identity holds."""
    # Letters (any script), digits, - and _ only: no dots, no separators.
    base = re.sub(r"[^\w-]+", "_", participant).strip("_") or "participant"
    name, number = f"{base}.flac", 2
    while name.lower() in taken:
        name, number = f"{base}-{number}.flac", number + 1
    taken.add(name.lower())
    return name


def room_stems_render(
    sidecars: Sequence[Path], output: Path, *, threads: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> StemsResult:
    """Write the ZIP of stems of the records whose sidecars are given to
    ``output`` (through a temporary name, then renamed)."""
    records = mix_records_read(sidecars)
    by_participant: dict[str, list[MixRecord]] = {}
    for record in records:
        if record.has_audio:
            by_participant.setdefault(record.sidecar.participant, []).append(record)
    if not by_participant:
        raise MixError("no record has audio")
    duration_ms = max(record.span.end_ms for record in records)
    total = round(duration_ms * MIX_SAMPLE_RATE / 1000)
    taken: set[str] = set()
    stems = tuple(
        Stem(participant, stem_file_name(participant, taken), len(by_participant[participant]))
        for participant in sorted(by_participant)
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".stems-", dir=output.parent) as folder:
        workers = max(1, min(len(stems), threads or os.cpu_count() or 1))
        with ThreadPoolExecutor(workers, thread_name_prefix="stem") as pool:
            futures = [
                pool.submit(_stem_write, by_participant[stem.participant], total, Path(folder) / stem.file_name)
                for stem in stems
            ]
            for done, future in enumerate(as_completed(futures), 1):
                future.result()
                if progress is not None:
                    progress(round(90 * done / len(stems)))
        paths = [Path(folder) / stem.file_name for stem in stems]
        temporary = output.with_name(f".{output.name}.tmp")
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for path in paths:
                archive.write(path, arcname=path.name)
        os.replace(temporary, output)
    media_started_at_ms = records[0].sidecar.started_at_ms - records[0].origin_ms
    return StemsResult(stems, round(duration_ms), media_started_at_ms)


def _stem_write(records: Sequence[MixRecord], total: int, path: Path) -> None:
    """One participant's records summed into a mono 16-bit FLAC of ``total`` samples."""
    sources = [
        AudioSource(
            record.media_path, round((record.origin_ms + record.audio_correction_ms) * MIX_SAMPLE_RATE / 1000)
        )
        for record in records
    ]
    try:
        with av.open(str(path), "w", format="flac") as container:
            stream: Any = container.add_stream("flac", rate=MIX_SAMPLE_RATE, layout="mono")
            stream.format = "s16"
            stream.codec_context.options = {"compression_level": str(FLAC_COMPRESSION_LEVEL)}
            time_base = Fraction(1, MIX_SAMPLE_RATE)
            for start in range(0, total, BLOCK_SAMPLES):
                count = min(BLOCK_SAMPLES, total - start)
                mono = np.zeros(count, dtype=np.float32)
                for source in sources:
                    stereo = source.read(start, count)
                    mono += (stereo[0] + stereo[1]) * 0.5
                samples = (np.clip(mono, -1.0, 1.0) * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
                frame.sample_rate = MIX_SAMPLE_RATE
                frame.pts = start
                frame.time_base = time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    finally:
        for source in sources:
            source.close()
