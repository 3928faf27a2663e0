"""Synchronized stream records: padding at the start, then the reference's
exact ffmpeg merge command on two padded records."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import av
import pytest

from recording.padding import record_pad
from recording.sidecar import sidecar_read
from rooms.media.peer import use_host_address
from tests.recording.live_records import start_record
from tests.recording.synthetic import SyntheticRecord, synthetic_record_write

# The reference's merge command, exactly, for two participants.
MERGE = (
    'ffmpeg -i {first} -i {second} -filter_complex "[0:v]pad=iw*2:ih[int];[int][1:v]overlay=W/2:0[vid];'
    '[0:a][1:a]amerge[a]" -map [vid] -map [a] -ac 2 -strict -2 -c:v libx264 -crf 23 -preset veryfast {output}'
)


@pytest.fixture(autouse=True)
def loopback_only() -> None:
    use_host_address("127.0.0.1")


def duration_s(path: Path) -> float:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", str(path)],
        capture_output=True, text=True, check=True,
    )
    return float(json.loads(result.stdout)["format"]["duration"])


def half_lumas(path: Path) -> list[tuple[float, float, float]]:
    """(time, left half mean luma, right half mean luma) of every frame."""
    lumas = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            luma = frame.to_ndarray(format="gray")
            middle = luma.shape[1] // 2
            lumas.append((float(frame.time), float(luma[:, :middle].mean()), float(luma[:, middle:].mean())))
    return lumas


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_padded_records_merge_with_the_reference_command(tmp_path: Path, codec: str) -> None:
    first = await start_record(tmp_path, "first", "alice", codec=codec, shade=200)
    await asyncio.sleep(2.0)  # the second participant starts two seconds later
    second = await start_record(tmp_path, "second", "bob", codec=codec, shade=200)
    await asyncio.sleep(2.0)
    first_result, second_result = await asyncio.gather(first.stop(), second.stop())
    sidecars = [sidecar_read(result.sidecar_path) for result in (first_result, second_result)]
    room_start = min(sidecar.started_at_ms for sidecar in sidecars)
    gap_s = (sidecars[1].started_at_ms - room_start) / 1000
    assert 1.8 < gap_s < 3.0

    assert record_pad(first_result.sidecar_path, room_start).padded_ms == 0
    padded = record_pad(second_result.sidecar_path, room_start)
    assert abs(padded.padded_ms / 1000 - gap_s) < 0.001
    # Padding again changes nothing.
    assert record_pad(second_result.sidecar_path, room_start).padded_ms == 0
    after = sidecar_read(second_result.sidecar_path)
    assert after.started_at_ms == room_start and after.padded_ms == padded.padded_ms
    assert abs(duration_s(padded.path) - duration_s(first_result.path)) < 0.3

    output = tmp_path / "output.mp4"
    command = MERGE.format(first=first_result.path, second=padded.path, output=output)
    subprocess.run(command, shell=True, check=True, capture_output=True, cwd=tmp_path)

    assert abs(duration_s(output) - duration_s(first_result.path)) < 0.3
    lumas = half_lumas(output)
    before = [(left, right) for time, left, right in lumas if time < gap_s - 0.2]
    after_start = [(left, right) for time, left, right in lumas if time > gap_s + 0.5]
    assert before and after_start
    # Until bob's real start his half is black (limited-range black is 16).
    assert all(right < 20 for _, right in before), before[:5]
    assert all(left > 60 for left, _ in before)
    assert all(right > 60 for _, right in after_start)


@pytest.mark.parametrize("gap_ms", [1990.0, 1993.0, 2009.9, 40.0])
def test_silence_ends_before_the_record_starts(tmp_path: Path, gap_ms: float) -> None:
    """The Opus encoder's flushed tail packet (20 ms, 6.5 ms of encoder delay
    earlier) could land after the record's first packet when the gap is not
    a whole number of frames: the muxer refused the file."""
    record = SyntheticRecord(duration_s=1.0)
    sidecar_path = synthetic_record_write(tmp_path, record)
    padded = record_pad(sidecar_path, record.started_at_ms - gap_ms)
    assert padded.padded_ms == pytest.approx(gap_ms, abs=0.01)
    times: dict[str, list[float]] = {"audio": [], "video": []}
    with av.open(str(padded.path)) as container:
        for packet in container.demux():
            if packet.dts is not None:
                times[packet.stream.type].append(float(packet.dts * packet.time_base))
    for kind_times in times.values():
        assert kind_times == sorted(kind_times)
        assert kind_times[0] < 0.05
    assert abs(duration_s(padded.path) - (gap_ms / 1000 + record.duration_s)) < 0.1
