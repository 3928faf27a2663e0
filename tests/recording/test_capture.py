"""Stream records written from the forwarded frames, with real aiortc
publishers on loopback: files ffprobe reads, the very bytes that were
forwarded (nothing re-encoded), and the sidecar's timing."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import av
import pytest

from recording.capture import RecordResult
from recording.sidecar import sidecar_read, track_sender_start_ms
from rooms.media.keyframes import is_keyframe
from rooms.media.peer import use_host_address
from tests.recording.live_records import start_record


@pytest.fixture(autouse=True)
def loopback_only() -> None:
    use_host_address("127.0.0.1")


def ffprobe(path: Path) -> dict:  # type: ignore[type-arg]
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


async def record_for(codec: str, seconds: float, directory: Path) -> tuple[RecordResult, dict[str, list[bytes]]]:
    live = await start_record(directory, codec=codec)
    await asyncio.sleep(seconds)  # the length of media to record
    return await live.stop(), live.forwarded


def annex_b_to_length_prefixed(frame: bytes) -> bytes:
    units = [unit for unit in re.split(b"\x00\x00\x00\x01|\x00\x00\x01", frame) if unit]
    return b"".join(len(unit).to_bytes(4, "big") + unit for unit in units)


def demuxed(path: Path) -> dict[str, list[bytes]]:
    packets: dict[str, list[bytes]] = {"video": [], "audio": []}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size:
                packets[packet.stream.type].append(bytes(packet))
    return packets


@pytest.mark.parametrize(("codec", "suffix", "video_codec"), [("VP8", ".webm", "vp8"), ("H264", ".mp4", "h264")])
async def test_record_holds_the_forwarded_frames_unchanged(tmp_path: Path, codec: str, suffix: str,
                                                           video_codec: str) -> None:
    result, forwarded = await record_for(codec, 3.0, tmp_path)
    assert result.failure == ""
    assert result.path.suffix == suffix and result.path.exists()
    assert not (tmp_path / "s1.mkv").exists()  # the Matroska was remuxed and removed

    probe = ffprobe(result.path)
    codecs = {stream["codec_type"]: stream["codec_name"] for stream in probe["streams"]}
    assert codecs == {"video": video_codec, "audio": "opus"}
    video = next(stream for stream in probe["streams"] if stream["codec_type"] == "video")
    assert (video["width"], video["height"]) == (640, 480)
    assert 2.5 <= float(probe["format"]["duration"]) <= 4.0

    # Recording started at the first keyframe; from there every forwarded
    # frame is in the file byte for byte (H.264 in MP4 with length prefixes
    # instead of Annex B start codes).
    first_key = next(i for i, data in enumerate(forwarded["video"]) if is_keyframe(codec, data))
    recorded = demuxed(result.path)
    expected_video = forwarded["video"][first_key:]
    if codec == "H264":
        expected_video = [annex_b_to_length_prefixed(frame) for frame in expected_video]
    # (frames forwarded after the record closed are not in it)
    assert len(recorded["video"]) > 60
    assert recorded["video"] == expected_video[: len(recorded["video"])]
    first_audio = forwarded["audio"].index(recorded["audio"][0])
    assert recorded["audio"] == forwarded["audio"][first_audio:first_audio + len(recorded["audio"])]
    assert len(recorded["audio"]) >= 100

    sidecar = sidecar_read(result.sidecar_path)
    assert sidecar.file == result.path.name and sidecar.ended_at_ms is not None
    assert sidecar.stream == "s1" and sidecar.participant == "alice" and sidecar.room_id == "room1"
    video_track, audio_track = sidecar.track("video"), sidecar.track("audio")
    assert video_track is not None and audio_track is not None
    assert video_track.offset_ms == 0 and 0 <= audio_track.offset_ms < 100
    assert video_track.packets == len(recorded["video"]) and video_track.clock_rate == 90000
    assert audio_track.clock_rate == 48000 and audio_track.codec == "opus"
    # aiortc publishers send a sender report about every second; their clock
    # is this machine's, so the sender's time of each track's first frame is
    # close to its arrival (which checks the first RTP timestamps kept: a
    # wrong one is off by seconds). A software H.264 encoder on a busy
    # machine takes up to a few hundred milliseconds for its first frame.
    for track in (video_track, audio_track):
        assert track.sender_reports
        sender_start = track_sender_start_ms(track)
        assert sender_start is not None and abs(sender_start - track.first_arrival_ms) < 400
