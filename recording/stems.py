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

Decoding and encoding go through PyAV, which releases the GIL while it
decodes and encodes, on one thread per participant (up to the core count);
the FLAC files are stored in the ZIP as they are (they are compressed
already). tests/bench/recording_stems.py compares this with the ffmpeg CLI
doing the same.
"""

from __future__ import annotations

import heapq
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from recording.mix_sources import AUDIO_CONTINUITY_S, MIX_SAMPLE_RATE, FloatSamples
from recording.mixing import MixError, MixRecord, mix_records_read

# Ten seconds of samples are summed, then encoded, at a time: large enough
# that Python's share is negligible, small enough that a 16-participant room
# holds little memory.
CHUNK_SAMPLES = 10 * MIX_SAMPLE_RATE
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
    """One participant's records summed into a mono 16-bit FLAC of ``total`` samples.

    The decoded frames of all the records come in order of their place on
    the room timeline and are added into a chunk of CHUNK_SAMPLES, which is
    encoded once nothing more can fall into it: no per-frame buffers are
    grown or copied, which is what keeps a long room cheap in Python.
    """
    placed = heapq.merge(*(_placed_frames(record) for record in records), key=lambda item: item[0])
    with av.open(str(path), "w", format="flac") as container:
        stream: Any = container.add_stream("flac", rate=MIX_SAMPLE_RATE, layout="mono")
        stream.format = "s16"
        stream.codec_context.options = {"compression_level": str(FLAC_COMPRESSION_LEVEL)}
        # A chunk, and as much again behind it for frames that run over its
        # end: frames come in order of where they start, so once one starts
        # past the chunk nothing more can fall into it.
        buffer = np.zeros(2 * CHUNK_SAMPLES, dtype=np.float32)
        chunk_start = 0
        for position, samples in placed:
            if position >= total:
                break
            while position >= chunk_start + CHUNK_SAMPLES:
                _chunk_encode(container, stream, buffer, chunk_start, total)
                chunk_start += CHUNK_SAMPLES
            offset = position - chunk_start
            count = min(samples.shape[0], buffer.shape[0] - offset, total - position)
            buffer[offset : offset + count] += samples[:count]
        while chunk_start < total:
            _chunk_encode(container, stream, buffer, chunk_start, total)
            chunk_start += CHUNK_SAMPLES
        for packet in stream.encode(None):
            container.mux(packet)


def _chunk_encode(container: Any, stream: Any, buffer: FloatSamples, chunk_start: int, total: int) -> None:
    """Encode the buffer's first chunk and move what ran over it to the front."""
    count = min(CHUNK_SAMPLES, total - chunk_start)
    samples = (np.clip(buffer[:count], -1.0, 1.0) * 32767).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = MIX_SAMPLE_RATE
    frame.pts = chunk_start
    frame.time_base = Fraction(1, MIX_SAMPLE_RATE)
    for packet in stream.encode(frame):
        container.mux(packet)
    buffer[:CHUNK_SAMPLES] = buffer[CHUNK_SAMPLES:]
    buffer[CHUNK_SAMPLES:] = 0


def _placed_frames(record: MixRecord) -> Iterator[tuple[int, FloatSamples]]:
    """A record's audio as (room sample index, mono samples), in order, never overlapping itself.

    Placed as ``recording.mix_sources.AudioSource`` places it: the file's
    time plus the record's origin and audio correction, a frame within
    AUDIO_CONTINUITY_S of where the previous ended continuing it (timestamps
    in milliseconds must not open gaps or overlaps of a few samples), a
    real gap (lost packets) left silent, and what overlaps already placed
    audio dropped. Samples before the room's time 0 are cut.
    """
    origin = round((record.origin_ms + record.audio_correction_ms) * MIX_SAMPLE_RATE / 1000)
    snap = AUDIO_CONTINUITY_S * MIX_SAMPLE_RATE
    with av.open(str(record.media_path)) as container:
        audio = container.streams.audio[0]
        resampler: Any = None
        placed_end: int | None = None
        for packet in container.demux(audio):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue  # lost RTP in the capture: a corrupt packet is skipped, as the mixer does
            for frame in frames:
                position = origin + round(float(frame.time or 0.0) * MIX_SAMPLE_RATE)
                if frame.format.name != "fltp" or frame.sample_rate != MIX_SAMPLE_RATE:
                    resampler = resampler or av.AudioResampler(format="fltp", rate=MIX_SAMPLE_RATE)
                    decoded = [resampled.to_ndarray() for resampled in resampler.resample(frame)]
                    if not decoded:
                        continue
                    planes = np.concatenate(decoded, axis=1)
                else:
                    planes = frame.to_ndarray()
                mono = planes[0] if planes.shape[0] == 1 else planes.mean(axis=0, dtype=np.float32)
                if placed_end is not None:
                    if abs(position - placed_end) <= snap:
                        position = placed_end
                    elif position < placed_end:
                        mono = mono[placed_end - position :]
                        position = placed_end
                if position < 0:
                    mono = mono[-position:]
                    position = 0
                if mono.shape[0] == 0:
                    continue
                placed_end = position + mono.shape[0]
                yield position, mono
