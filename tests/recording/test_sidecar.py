"""Sidecar JSON: the exact format, strict reading, RTP unwrapping and the A/V correction."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from recording.sidecar import (
    SenderReport,
    Sidecar,
    SidecarError,
    TrackTiming,
    audio_correction_ms,
    rtp_timestamp_delta,
    sidecar_read,
    sidecar_write,
    track_sender_start_ms,
)
from tests.recording.synthetic import SyntheticRecord, synthetic_record_write

FORMAT_EXAMPLE = {
    "version": 1,
    "room": "weekly-sync",
    "room_id": "r-1",
    "stream": "s-1",
    "participant": "alice",
    "kind": "camera",
    "file": "s-1.webm",
    "started_at_ms": 1764180000123.4,
    "ended_at_ms": None,
    "padded_ms": 0,
    "tracks": [
        {
            "kind": "video",
            "codec": "VP8",
            "clock_rate": 90000,
            "ssrc": 123,
            "first_rtp_timestamp": 3000,
            "first_arrival_ms": 1764180000123.4,
            "offset_ms": 0.0,
            "sender_reports": [{"ntp_ms": 1764180001000.0, "rtp_timestamp": 93000, "arrival_ms": 1764180001002.1}],
            "packets": 1800,
            "bytes": 7500000,
        }
    ],
}

# A record as the capture leaves it, byte for byte as the first, hand-written
# codec of this format wrote it: files on disk today look like this.
WRITTEN_BY_THE_FIRST_CODEC = """\
{
  "version": 1,
  "room": "weekly sync",
  "room_id": "3f2a9c",
  "stream": "s-7",
  "participant": "Zoë",
  "kind": "camera",
  "file": "s-7.webm",
  "started_at_ms": 1764180000123.375,
  "ended_at_ms": 1764180060130.5,
  "padded_ms": 0,
  "tracks": [
    {
      "kind": "video",
      "codec": "VP8",
      "clock_rate": 90000,
      "ssrc": 2864434397,
      "first_rtp_timestamp": 4294960000,
      "first_arrival_ms": 1764180000123.375,
      "offset_ms": 0.0,
      "sender_reports": [
        {
          "ntp_ms": 1764176401140.5,
          "rtp_timestamp": 85000,
          "arrival_ms": 1764180001145.625
        }
      ],
      "packets": 1803,
      "bytes": 7512345
    },
    {
      "kind": "audio",
      "codec": "opus",
      "clock_rate": 48000,
      "ssrc": 1122334455,
      "first_rtp_timestamp": 960,
      "first_arrival_ms": 1764180000161.25,
      "offset_ms": 37.875,
      "sender_reports": [
        {
          "ntp_ms": 1764176401102.0,
          "rtp_timestamp": 48960,
          "arrival_ms": 1764180001101.0
        }
      ],
      "packets": 3001,
      "bytes": 240080
    }
  ]
}
"""


def first_codec_record() -> Sidecar:
    """The record WRITTEN_BY_THE_FIRST_CODEC holds, built as the capture builds one."""
    sidecar = Sidecar(
        room="weekly sync", room_id="3f2a9c", stream="s-7", participant="Zoë", kind="camera", file="s-7.webm",
        started_at_ms=1764180000123.375, tracks=[],
    )
    video = TrackTiming(
        kind="video", codec="VP8", clock_rate=90000, ssrc=2864434397, first_rtp_timestamp=4294960000,
        first_arrival_ms=1764180000123.375, offset_ms=0.0, packets=0, bytes=0,
    )
    audio = TrackTiming(
        kind="audio", codec="opus", clock_rate=48000, ssrc=1122334455, first_rtp_timestamp=960,
        first_arrival_ms=1764180000161.25, offset_ms=37.875, packets=0, bytes=0,
    )
    video.sender_reports.append(SenderReport(1764176401140.5, 85000, 1764180001145.625))
    audio.sender_reports.append(SenderReport(1764176401102.0, 48960, 1764180001101.0))
    video.packets, video.bytes = 1803, 7512345
    audio.packets, audio.bytes = 3001, 240080
    sidecar.tracks += [video, audio]
    sidecar.ended_at_ms = 1764180060130.5
    return sidecar


def video_track(first_rtp: int, reports: list[SenderReport], offset_ms: float = 0.0) -> TrackTiming:
    return TrackTiming(
        kind="video", codec="VP8", clock_rate=90000, ssrc=1, first_rtp_timestamp=first_rtp,
        first_arrival_ms=1000.0 + offset_ms, offset_ms=offset_ms, sender_reports=reports, packets=0, bytes=0,
    )


def test_format_round_trips_key_for_key() -> None:
    sidecar = Sidecar.from_json(json.dumps(FORMAT_EXAMPLE))
    assert sidecar.ended_at_ms is None
    assert sidecar.tracks[0].sender_reports[0] == SenderReport(1764180001000.0, 93000, 1764180001002.1)
    assert json.loads(sidecar.to_json()) == FORMAT_EXAMPLE


def test_write_is_atomic_and_read_back_equal(tmp_path: Path) -> None:
    sidecar = Sidecar.from_dict(FORMAT_EXAMPLE)
    path = tmp_path / "s-1.json"
    sidecar_write(path, sidecar)
    sidecar.ended_at_ms = 1764180060123.4
    sidecar_write(path, sidecar)  # rewriting replaces, leaving no temporary behind
    assert sidecar_read(path) == sidecar
    assert [entry.name for entry in tmp_path.iterdir()] == ["s-1.json"]
    assert sidecar.media_path(path) == tmp_path / "s-1.webm"


def test_a_sidecar_written_by_the_first_codec_reads_back_identically(tmp_path: Path) -> None:
    path = tmp_path / "s-7.json"
    path.write_text(WRITTEN_BY_THE_FIRST_CODEC, encoding="utf-8")
    sidecar = sidecar_read(path)
    assert sidecar == first_codec_record()
    assert json.loads(sidecar.to_json()) == json.loads(WRITTEN_BY_THE_FIRST_CODEC)


def test_a_record_is_written_byte_for_byte_as_the_first_codec_wrote_it(tmp_path: Path) -> None:
    path = tmp_path / "s-7.json"
    sidecar_write(path, first_codec_record())
    assert path.read_text(encoding="utf-8") == WRITTEN_BY_THE_FIRST_CODEC


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "sidecar.version"),
        ({"started_at_ms": "soon"}, "sidecar.started_at_ms"),
        ({"room": None}, "sidecar.room"),
        ({"tracks": {}}, "sidecar.tracks"),
        ({"tracks": [{**FORMAT_EXAMPLE["tracks"][0], "kind": "data"}]}, "sidecar.tracks[0].kind"),  # type: ignore[index]
        ({"tracks": [{**FORMAT_EXAMPLE["tracks"][0], "ssrc": True}]}, "sidecar.tracks[0].ssrc"),  # type: ignore[index]
        (
            {"tracks": [{**FORMAT_EXAMPLE["tracks"][0], "sender_reports": [{"ntp_ms": 1.0}]}]},  # type: ignore[index]
            "sidecar.tracks[0].sender_reports[0].rtp_timestamp",
        ),
        # Every field has its JSON type: no strings for numbers, no booleans or fractions for integers.
        ({"version": "1"}, "sidecar.version"),
        ({"room_id": 5}, "sidecar.room_id"),
        ({"kind": ["camera"]}, "sidecar.kind"),
        ({"started_at_ms": None}, "sidecar.started_at_ms"),
        ({"ended_at_ms": "later"}, "sidecar.ended_at_ms"),
        ({"padded_ms": True}, "sidecar.padded_ms"),
        ({"tracks": [5]}, "sidecar.tracks[0]"),
        ({"tracks": [{**FORMAT_EXAMPLE["tracks"][0], "clock_rate": 0}]}, "sidecar.tracks[0].clock_rate"),  # type: ignore[index]
        ({"tracks": [{**FORMAT_EXAMPLE["tracks"][0], "clock_rate": 90000.0}]}, "sidecar.tracks[0].clock_rate"),  # type: ignore[index]
        ({"tracks": [{**FORMAT_EXAMPLE["tracks"][0], "first_rtp_timestamp": "3000"}]}, "sidecar.tracks[0].first_rtp_timestamp"),  # type: ignore[index]  # noqa: E501
        ({"tracks": [{**FORMAT_EXAMPLE["tracks"][0], "offset_ms": False}]}, "sidecar.tracks[0].offset_ms"),  # type: ignore[index]
        ({"tracks": [{**FORMAT_EXAMPLE["tracks"][0], "codec": None}]}, "sidecar.tracks[0].codec"),  # type: ignore[index]
        ({"tracks": [{**FORMAT_EXAMPLE["tracks"][0], "sender_reports": {}}]}, "sidecar.tracks[0].sender_reports"),  # type: ignore[index]
        ({"tracks": [{**FORMAT_EXAMPLE["tracks"][0], "sender_reports": [7]}]}, "sidecar.tracks[0].sender_reports[0]"),  # type: ignore[index]
        (
            {"tracks": [{**FORMAT_EXAMPLE["tracks"][0], "sender_reports": [{"ntp_ms": 1.0, "rtp_timestamp": 2.5, "arrival_ms": 3}]}]},  # type: ignore[index]  # noqa: E501
            "sidecar.tracks[0].sender_reports[0].rtp_timestamp",
        ),
    ],
)
def test_malformed_sidecar_names_the_bad_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(SidecarError, match=re.escape(message)):
        Sidecar.from_dict({**FORMAT_EXAMPLE, **change})


@pytest.mark.parametrize(
    "missing",
    ["version", "room", "room_id", "stream", "participant", "kind", "file", "started_at_ms", "tracks"],
)
def test_a_sidecar_without_a_required_key_is_refused(missing: str) -> None:
    data = {key: value for key, value in FORMAT_EXAMPLE.items() if key != missing}
    with pytest.raises(SidecarError, match=re.escape(f"sidecar.{missing}")):
        Sidecar.from_dict(data)


@pytest.mark.parametrize(
    "missing",
    ["kind", "codec", "clock_rate", "ssrc", "first_rtp_timestamp", "first_arrival_ms", "offset_ms", "packets", "bytes"],
)
def test_a_track_without_a_required_key_is_refused(missing: str) -> None:
    track = {key: value for key, value in FORMAT_EXAMPLE["tracks"][0].items() if key != missing}  # type: ignore[index]
    with pytest.raises(SidecarError, match=re.escape(f"sidecar.tracks[0].{missing}")):
        Sidecar.from_dict({**FORMAT_EXAMPLE, "tracks": [track]})


def test_optional_keys_may_be_absent() -> None:
    track = {key: value for key, value in FORMAT_EXAMPLE["tracks"][0].items() if key != "sender_reports"}  # type: ignore[index]
    data = {key: value for key, value in FORMAT_EXAMPLE.items() if key not in ("ended_at_ms", "padded_ms")}
    sidecar = Sidecar.from_dict({**data, "tracks": [track]})
    assert sidecar.ended_at_ms is None and sidecar.padded_ms == 0 and sidecar.tracks[0].sender_reports == []


def test_keys_of_no_meaning_are_ignored() -> None:
    track = FORMAT_EXAMPLE["tracks"][0]  # type: ignore[index]
    report = {**track["sender_reports"][0], "jitter": 3}
    extended = {**FORMAT_EXAMPLE, "encoder": "x", "tracks": [{**track, "rid": "h", "sender_reports": [report]}]}
    sidecar = Sidecar.from_dict(extended)
    assert sidecar == Sidecar.from_dict(FORMAT_EXAMPLE)
    assert json.loads(sidecar.to_json()) == FORMAT_EXAMPLE


def test_every_problem_is_named_at_once() -> None:
    track = {**FORMAT_EXAMPLE["tracks"][0], "ssrc": "1"}  # type: ignore[index]
    with pytest.raises(SidecarError) as raised:
        Sidecar.from_dict({**FORMAT_EXAMPLE, "room": 1, "tracks": [track]})
    assert str(raised.value) == (
        "sidecar.room: Input should be a valid string, got 1; "
        "sidecar.tracks[0].ssrc: Input should be a valid integer, got '1'"
    )


@pytest.mark.parametrize("data", [[FORMAT_EXAMPLE], "sidecar", 1, None])
def test_a_sidecar_that_is_not_an_object_is_refused(data: object) -> None:
    with pytest.raises(SidecarError, match=r"^sidecar: "):
        Sidecar.from_dict(data)



def test_unreadable_file_names_its_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"version": 1,')
    with pytest.raises(SidecarError, match=r"broken\.json: sidecar: not JSON"):
        sidecar_read(path)


def test_rtp_timestamp_delta_unwraps_32_bits() -> None:
    assert rtp_timestamp_delta(5, 2**32 - 5) == 10
    assert rtp_timestamp_delta(2**32 - 5, 5) == -10
    assert rtp_timestamp_delta(93000, 3000) == 90000


def test_sender_start_uses_the_earliest_report_across_a_wrap() -> None:
    first = 2**32 - 9000  # 0.1 s before the wrap
    earliest = SenderReport(ntp_ms=50_000.0, rtp_timestamp=81000, arrival_ms=2.0)  # 1 s after the first packet
    # A later report from a drifting sender clock that would give another answer.
    later = SenderReport(ntp_ms=60_100.0, rtp_timestamp=81000 + 900000, arrival_ms=12.0)
    track = video_track(first, [later, earliest])
    assert track_sender_start_ms(track) == pytest.approx(49_000.0)
    assert track_sender_start_ms(video_track(first, [])) is None


def test_audio_correction_from_sender_reports(tmp_path: Path) -> None:
    late_audio = sidecar_read(synthetic_record_write(tmp_path, SyntheticRecord(stream="l", audio_offset_error_ms=60)))
    early_audio = sidecar_read(synthetic_record_write(tmp_path, SyntheticRecord(stream="e", audio_offset_error_ms=-25)))
    assert audio_correction_ms(late_audio) == pytest.approx(-60, abs=0.01)
    assert audio_correction_ms(early_audio) == pytest.approx(25, abs=0.01)


def test_without_reports_or_a_second_track_the_file_is_trusted(tmp_path: Path) -> None:
    no_reports = SyntheticRecord(stream="n", audio_offset_error_ms=60, sender_reports=False)
    audio_only = SyntheticRecord(stream="a", has_video=False)
    assert audio_correction_ms(sidecar_read(synthetic_record_write(tmp_path, no_reports))) == 0.0
    assert audio_correction_ms(sidecar_read(synthetic_record_write(tmp_path, audio_only))) == 0.0


def test_a_correction_of_seconds_is_not_believed(tmp_path: Path) -> None:
    sidecar = sidecar_read(synthetic_record_write(tmp_path, SyntheticRecord(stream="j", audio_offset_error_ms=20)))
    audio = sidecar.track("audio")
    assert audio is not None and audio_correction_ms(sidecar) == pytest.approx(-20, abs=0.01)
    # The sender's clock jumped 5 s between its video and its audio reports.
    audio.sender_reports = [replace(report, ntp_ms=report.ntp_ms + 5000) for report in audio.sender_reports]
    assert audio_correction_ms(sidecar) == 0.0


def test_repaired_is_written_only_when_true(tmp_path: Path) -> None:
    path = tmp_path / "s-7.json"
    sidecar = first_codec_record()
    sidecar.repaired = True
    sidecar_write(path, sidecar)
    assert json.loads(path.read_text(encoding="utf-8"))["repaired"] is True
    assert sidecar_read(path) == sidecar
    assert sidecar_read(path).repaired is True
    changed = json.loads(WRITTEN_BY_THE_FIRST_CODEC) | {"repaired": "yes"}
    with pytest.raises(SidecarError, match=r"sidecar\.repaired"):
        Sidecar.from_json(json.dumps(changed))
