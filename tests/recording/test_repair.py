"""Repair of records whose writer was killed: the bytes a killed capture
leaves (the muxer's live options, the file copied mid-write, or cut
mid-packet), rewritten with a duration and a seek index."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import av
import pytest

from recording.capture import LIVE_MUXER_OPTIONS
from recording.models import Recording
from recording.repair import RecordRepairError, record_repair
from recording.services import recordings_of_dead_nodes_close
from recording.sidecar import sidecar_read
from rooms.models import Room
from tests.recording.synthetic import SyntheticRecord, synthetic_record_write


def killed_copy(source: Path, target: Path, kill_at_s: float) -> float:
    """What a capture writing ``source``'s packets leaves at ``target`` when killed at ``kill_at_s``.

    The packets are muxed in time order with the capture's options; the
    file's bytes as they are on disk when the first packet at or after
    ``kill_at_s`` has been handed to the muxer are what the kill leaves.
    Returns the end (s) of the last packet muxed before the kill.
    """
    live = target.with_name(f"live-{target.name}")
    fmt = {".webm": "webm", ".mkv": "matroska"}[source.suffix]
    muxed_end = 0.0
    with av.open(str(source)) as reader:
        packets = sorted(
            (packet for packet in reader.demux() if packet.dts is not None),
            key=lambda packet: float(packet.dts * packet.time_base),
        )
        writer: Any = av.open(str(live), "w", format=fmt, options=LIVE_MUXER_OPTIONS)
        outputs = {stream.index: writer.add_stream_from_template(stream) for stream in reader.streams}
        for packet in packets:
            start = float(packet.dts * packet.time_base)
            if start >= kill_at_s:
                shutil.copy(live, target)
                break
            muxed_end = start + float((packet.duration or 0) * packet.time_base)
            packet.stream = outputs[packet.stream.index]
            writer.mux(packet)
        writer.close()
    live.unlink()
    return muxed_end


def probe(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def has_cues(path: Path) -> bool:
    """Whether a Matroska file carries its seek index (the Cues element, ID 0x1C53BB6B)."""
    return b"\x1c\x53\xbb\x6b" in path.read_bytes()


def frame_after_seek(path: Path, at_s: float) -> float:
    """Seek the video to ``at_s`` (through the index) and decode to the first frame there; its time."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        container.seek(round(at_s / video.time_base), stream=video, backward=True)
        for frame in container.decode(video):
            if frame.time is not None and frame.time >= at_s - 0.02:
                return float(frame.time)
    raise AssertionError(f"no frame at {at_s} s")


@pytest.fixture
def killed_record(tmp_path: Path) -> tuple[Path, Path, float]:
    """A 6 s VP8 + Opus record whose writer was killed at 4.2 s, with its sidecar."""
    source = tmp_path / "whole"
    whole_sidecar = synthetic_record_write(source, SyntheticRecord(duration_s=6.0, ended=False))
    folder = tmp_path / "room"
    folder.mkdir()
    media = folder / "stream-a.webm"
    muxed_end = killed_copy(source / "stream-a.webm", media, kill_at_s=4.2)
    sidecar = folder / "stream-a.json"
    shutil.copy(whole_sidecar, sidecar)
    return media, sidecar, muxed_end


def test_a_killed_record_has_no_duration_nor_index_and_loses_under_a_second(killed_record) -> None:  # type: ignore[no-untyped-def]
    media, _, muxed_end = killed_record
    info = probe(media)
    assert "duration" not in info["format"]
    assert not has_cues(media)
    with av.open(str(media)) as container:
        end = max(float((p.pts + p.duration) * p.time_base) for p in container.demux() if p.pts is not None)
    assert 0 < muxed_end - end <= 0.55  # the open half-second cluster


def test_repair_gives_a_killed_record_its_duration_and_index(killed_record) -> None:  # type: ignore[no-untyped-def]
    media, sidecar_path, muxed_end = killed_record
    readable_packets = sum(1 for p in av.open(str(media)).demux() if p.dts is not None)
    result = record_repair(media, sidecar_path)
    assert result.path == media
    info = probe(media)
    duration = float(info["format"]["duration"])
    assert muxed_end - 0.55 <= duration <= muxed_end + 0.05
    assert abs(result.duration_ms / 1000 - duration) < 0.05
    assert {stream["codec_name"] for stream in info["streams"]} == {"vp8", "opus"}
    assert result.packets == readable_packets and result.size_bytes == media.stat().st_size
    assert has_cues(media)
    assert frame_after_seek(media, 2.0) == pytest.approx(2.0, abs=0.04)
    sidecar = sidecar_read(sidecar_path)
    assert sidecar.repaired is True and sidecar.file == "stream-a.webm" and sidecar.ended_at_ms is None
    assert sorted(path.name for path in media.parent.iterdir()) == ["stream-a.json", "stream-a.webm"]


def test_a_record_cut_mid_packet_keeps_every_whole_packet(killed_record) -> None:  # type: ignore[no-untyped-def]
    media, sidecar_path, muxed_end = killed_record
    data = media.read_bytes()
    media.write_bytes(data[:-700])  # the kill came while a cluster was being written
    result = record_repair(media, sidecar_path)
    duration = float(probe(media)["format"]["duration"])
    assert muxed_end - 1.0 <= duration <= muxed_end
    assert has_cues(media)
    with av.open(str(media)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded >= 30 * (duration - 0.1)
    assert result.duration_ms == pytest.approx(duration * 1000, abs=50)


def test_an_h264_record_becomes_the_mp4_a_normal_end_makes(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=160x120:d=5:r=30", "-c:v", "libx264",
         "-profile:v", "baseline", "-g", "30", "-pix_fmt", "yuv420p", str(whole)],
        check=True, timeout=60,
    )
    media = tmp_path / "stream-h.mkv"
    muxed_end = killed_copy(whole, media, kill_at_s=3.6)
    assert "duration" not in probe(media)["format"]
    result = record_repair(media)
    assert result.path == tmp_path / "stream-h.mp4" and not media.exists()
    info = probe(result.path)
    assert info["format"]["format_name"].startswith("mov,mp4")
    assert info["streams"][0]["codec_name"] == "h264"
    assert muxed_end - 0.55 <= float(info["format"]["duration"]) <= muxed_end + 0.05
    assert frame_after_seek(result.path, 2.0) == pytest.approx(2.0, abs=0.04)
    assert not list(tmp_path.glob(".*repair"))


def test_a_file_with_no_packet_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    media = tmp_path / "empty.webm"
    writer: Any = av.open(str(media), "w", format="webm", options=LIVE_MUXER_OPTIONS)
    writer.add_mux_stream("vp8", width=64, height=64)
    writer.start_encoding()
    shutil.copy(media, tmp_path / "header-only.webm")
    writer.close()
    before = (tmp_path / "header-only.webm").read_bytes()
    with pytest.raises(RecordRepairError):
        record_repair(tmp_path / "header-only.webm")
    assert (tmp_path / "header-only.webm").read_bytes() == before
    assert not list(tmp_path.glob(".*repair"))


@pytest.mark.django_db
def test_the_sweep_repairs_the_record_of_a_dead_node_and_the_row_says_so(
    settings, tmp_path: Path, killed_record  # type: ignore[no-untyped-def]
) -> None:
    media, sidecar, muxed_end = killed_record
    settings.RECORDINGS_ROOT = tmp_path
    room = Room.objects.create(name="room", live_id="live-r")
    Recording.objects.create(
        room=room, kind=Recording.Kind.STREAM, stream_live_id="stream-a", participant="alice", node="dead",
        file_path="room/stream-a.webm", sidecar_path="room/stream-a.json",
    )
    assert recordings_of_dead_nodes_close({"alive"}) == 1
    row = Recording.objects.get()
    assert (row.status, row.repaired, row.file_path) == (Recording.Status.PARTIAL, True, "room/stream-a.webm")
    assert row.duration_ms == pytest.approx(float(probe(media)["format"]["duration"]) * 1000, abs=50)
    assert muxed_end * 1000 - 550 <= row.duration_ms <= muxed_end * 1000 + 50
    assert row.size_bytes == media.stat().st_size
    assert row.failure_reason == "the media node stopped while recording"
    assert sidecar_read(sidecar).repaired is True
    # A second sweep finds nothing to close and leaves the file alone.
    before = media.read_bytes()
    assert recordings_of_dead_nodes_close({"alive"}) == 0
    assert media.read_bytes() == before


@pytest.mark.django_db
def test_a_record_that_cannot_be_repaired_stays_partial_and_says_why(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_ROOT = tmp_path
    (tmp_path / "room").mkdir()
    (tmp_path / "room" / "s1.webm").write_bytes(b"not really a webm")
    room = Room.objects.create(name="room", live_id="live-r")
    Recording.objects.create(
        room=room, kind=Recording.Kind.STREAM, stream_live_id="s1", participant="alice", node="dead",
        file_path="room/s1.webm",
    )
    recordings_of_dead_nodes_close(set())
    row = Recording.objects.get()
    assert (row.status, row.repaired, row.size_bytes) == (Recording.Status.PARTIAL, False, 17)
    assert row.failure_reason.startswith("the media node stopped while recording; the file was not repaired: s1.webm")
    assert (tmp_path / "room" / "s1.webm").read_bytes() == b"not really a webm"
