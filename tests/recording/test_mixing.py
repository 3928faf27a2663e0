"""The offline room mixer on real synthetic records: real VP8/Opus in, real H.264/AAC out."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recording import mixing
from recording.mixer_config import MixerConfig
from recording.mixing import MixError, MixResult, room_mix
from recording.subtitles import ChatLine
from tests.recording.probe import beep_onsets_s, ffprobe, flash_onsets_s, peak_level, pictures_at, text_samples
from tests.recording.synthetic import DEFAULT_STARTED_AT_MS, SyntheticRecord, synthetic_record_write

RED = (200, 40, 40)
BLUE = (40, 40, 200)
GREEN = (40, 160, 40)
BLACK = (0, 0, 0)
START = DEFAULT_STARTED_AT_MS
# Colours survive VP8 and H.264 at these rates to within a few levels; black bars are exact black.
COLOUR_TOLERANCE = 12


def assert_colour(picture: Any, x: int, y: int, colour: tuple[int, int, int]) -> None:
    pixel = picture[y, x].astype(int)
    assert np.abs(pixel - np.array(colour)).max() <= COLOUR_TOLERANCE, f"pixel ({x}, {y}) is {pixel}, not {colour}"


@pytest.fixture(scope="module")
def late_join(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Alice (red) for 4 s; Bob (blue) joins 1.5 s in and stays to the end."""
    folder = tmp_path_factory.mktemp("late-join")
    return [
        synthetic_record_write(
            folder, SyntheticRecord(stream="a", participant="alice", colour=RED, duration_s=4.0, started_at_ms=START)
        ),
        synthetic_record_write(
            folder,
            SyntheticRecord(stream="b", participant="bob", colour=BLUE, duration_s=2.5, started_at_ms=START + 1500),
        ),
    ]


@pytest.fixture(scope="module")
def late_join_mix(
    late_join: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, MixResult, list[tuple[float, int]]]:
    output = tmp_path_factory.mktemp("late-join-out") / "mix.mp4"
    calls: list[tuple[float, int]] = []
    result = room_mix(
        late_join, output, MixerConfig(), progress=lambda percent: calls.append((time.monotonic(), percent))
    )
    return output, result, calls


def test_mix_is_h264_and_aac_of_the_room_duration(late_join_mix: tuple[Path, MixResult, list[Any]]) -> None:
    output, result, _ = late_join_mix
    probe = ffprobe(output)
    streams = {stream["codec_type"]: stream for stream in probe["streams"]}
    assert set(streams) == {"video", "audio"}
    video, audio = streams["video"], streams["audio"]
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    # Two 320x240 records live at once: side by side, as the reference's pad+overlay merge.
    assert (video["width"], video["height"]) == (640, 240) == (result.width, result.height)
    assert (audio["codec_name"], int(audio["sample_rate"]), audio["channels"]) == ("aac", 48000, 2)
    assert float(probe["format"]["duration"]) == pytest.approx(4.0, abs=0.07)
    assert float(video["duration"]) == pytest.approx(4.0, abs=0.04)
    assert int(video["nb_frames"]) == result.frames == 120
    assert result.duration_ms == 4000 and result.has_audio and result.has_video


def test_layout_adapts_when_a_participant_joins(late_join_mix: tuple[Path, MixResult, list[Any]]) -> None:
    before, after = pictures_at(late_join_mix[0], [0.7, 2.5])
    # Alone, Alice gets the whole canvas: her 4:3 picture centred, black bars either side.
    assert_colour(before, 320, 100, RED)
    assert_colour(before, 40, 100, BLACK)
    assert_colour(before, 600, 100, BLACK)
    # With Bob: two tiles, Alice (first to start) on the left.
    assert_colour(after, 160, 100, RED)
    assert_colour(after, 480, 100, BLUE)


def test_names_are_drawn_on_tiles(late_join_mix: tuple[Path, MixResult, list[Any]]) -> None:
    (after,) = pictures_at(late_join_mix[0], [2.5])
    for left, colour in ((0, RED), (320, BLUE)):
        label_area = after[200:240, left : left + 100].astype(int)
        white_text = (label_area.min(axis=2) > 180).sum()
        darkened_box = (np.abs(label_area - np.array(colour)).max(axis=2) > 40).sum()
        assert white_text > 30, f"no name text in the tile at x={left}"
        assert darkened_box > 300, f"no label box in the tile at x={left}"
    # Above the label the tile is untouched.
    assert_colour(after, 50, 150, RED)


def test_no_names_when_display_stream_name_is_off(late_join: list[Path], tmp_path: Path) -> None:
    output = tmp_path / "mix.mp4"
    room_mix(late_join, output, MixerConfig(display_stream_name=False))
    (after,) = pictures_at(output, [2.5])
    for left, colour in ((0, RED), (320, BLUE)):
        label_area = after[200:238, left + 2 : left + 100].astype(int)
        assert np.abs(label_area - np.array(colour)).max() <= COLOUR_TOLERANCE


def test_progress_rises_to_100_at_most_once_a_second(late_join_mix: tuple[Path, MixResult, list[Any]]) -> None:
    calls = late_join_mix[2]
    percents = [percent for _, percent in calls]
    assert percents and percents[-1] == 100 and percents == sorted(set(percents))
    times = [at for at, _ in calls[:-1]]  # the final 100 is always reported
    assert all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(times)), times


def test_progress_follows_the_work(late_join: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mixing, "PROGRESS_INTERVAL_S", 0.0)
    percents: list[int] = []
    room_mix(late_join, tmp_path / "mix.mp4", MixerConfig(), progress=percents.append)
    assert percents == list(range(percents[0], 101)) and percents[0] <= 1


def test_has_audio_false_leaves_audio_out(late_join: list[Path], tmp_path: Path) -> None:
    output = tmp_path / "mix.mp4"
    result = room_mix(late_join, output, MixerConfig(has_audio=False))
    assert [stream["codec_type"] for stream in ffprobe(output)["streams"]] == ["video"]
    assert not result.has_audio


def test_has_video_false_leaves_video_out(late_join: list[Path], tmp_path: Path) -> None:
    output = tmp_path / "mix.mp4"
    result = room_mix(late_join, output, MixerConfig(has_video=False))
    probe = ffprobe(output)
    assert [stream["codec_type"] for stream in probe["streams"]] == ["audio"]
    assert float(probe["format"]["duration"]) == pytest.approx(4.0, abs=0.05)
    assert not result.has_video and (result.width, result.height, result.frames) == (0, 0, 0)


@pytest.mark.parametrize(
    ("audio_error_ms", "sender_reports", "expected_offset_ms"),
    [
        (60.0, True, 0.0),  # the file's audio is 60 ms late; the sender reports correct it
        (-60.0, True, 0.0),  # early, likewise
        (60.0, False, 60.0),  # without reports the file is all there is: the error stays (and is measured)
    ],
)
def test_audio_video_alignment(
    tmp_path: Path, audio_error_ms: float, sender_reports: bool, expected_offset_ms: float
) -> None:
    # Dave (green, silent) starts the room; Carol joins 0.5 s later and flashes and beeps 1 s into her record.
    sidecars = [
        synthetic_record_write(
            tmp_path, SyntheticRecord(stream="d", participant="dave", colour=GREEN, duration_s=3.0, started_at_ms=START)
        ),
        synthetic_record_write(
            tmp_path,
            SyntheticRecord(
                stream="c",
                participant="carol",
                colour=RED,
                duration_s=2.0,
                started_at_ms=START + 500,
                flash_times_s=(1.0,),
                beep_times_s=(1.0,),
                audio_offset_error_ms=audio_error_ms,
                sender_reports=sender_reports,
            ),
        ),
    ]
    output = tmp_path / "mix.mp4"
    room_mix(sidecars, output, MixerConfig(display_stream_name=False))
    flashes = flash_onsets_s(output, region=(340, 20, 280, 180))  # Carol's tile, right of Dave's
    beeps = beep_onsets_s(output)
    assert len(flashes) == 1 and len(beeps) == 1, (flashes, beeps)
    # The flash is at the record's place on the room timeline (0.5 s) plus 1 s, to the output frame;
    # audio arriving first opens the record, so then the video sits later in the file.
    video_offset_s = max(0.0, -audio_error_ms) / 1000
    assert flashes[0] == pytest.approx(1.5 + video_offset_s, abs=0.034)
    offset_ms = (beeps[0] - flashes[0]) * 1000
    assert abs(offset_ms - expected_offset_ms) <= 40, offset_ms
    # Audio is placed to the sample (the file's 1 ms time base aside); video to the nearest output frame.
    assert beeps[0] == pytest.approx(1.5 + video_offset_s + expected_offset_ms / 1000, abs=0.004)
    assert abs(offset_ms - expected_offset_ms) <= 500 / 30 + 4, offset_ms


def test_audio_is_averaged_like_amix_and_never_clips(tmp_path: Path) -> None:
    # Two in-phase beeps at 0.5: a plain sum would reach 1.0; amix's 1/N gives 0.5.
    sidecars = [
        synthetic_record_write(
            tmp_path, SyntheticRecord(stream=name, participant=name, duration_s=2.0, beep_times_s=(0.5,))
        )
        for name in ("one", "two")
    ]
    output = tmp_path / "mix.mp4"
    room_mix(sidecars, output, MixerConfig(has_video=False))
    assert peak_level(output) == pytest.approx(0.5, abs=0.1)


def test_record_cut_short_by_a_crash_lasts_as_long_as_its_file(tmp_path: Path) -> None:
    sidecar = synthetic_record_write(tmp_path, SyntheticRecord(duration_s=2.0, ended=False))
    output = tmp_path / "mix.mp4"
    result = room_mix([sidecar], output, MixerConfig())
    assert result.duration_ms == pytest.approx(2000, abs=30)
    assert float(ffprobe(output)["format"]["duration"]) == pytest.approx(2.0, abs=0.07)


def test_audio_only_record_gets_a_named_black_tile(tmp_path: Path) -> None:
    sidecars = [
        synthetic_record_write(tmp_path, SyntheticRecord(stream="v", participant="vera", colour=BLUE, duration_s=1.0)),
        synthetic_record_write(
            tmp_path, SyntheticRecord(stream="o", participant="oscar", duration_s=1.0, has_video=False)
        ),
    ]
    output = tmp_path / "mix.mp4"
    room_mix(sidecars, output, MixerConfig())
    (picture,) = pictures_at(output, [0.5])
    assert_colour(picture, 160, 100, BLUE)
    assert_colour(picture, 480, 100, BLACK)
    assert (picture[200:240, 320:420].min(axis=2) > 180).sum() > 30  # "oscar" on the black tile


def test_nothing_to_mix_is_an_error(tmp_path: Path) -> None:
    sidecar = synthetic_record_write(tmp_path, SyntheticRecord(has_audio=False, duration_s=1.0))
    output = tmp_path / "mix.mp4"
    with pytest.raises(MixError):
        room_mix([sidecar], output, MixerConfig(has_video=False))
    with pytest.raises(MixError):
        room_mix([], output, MixerConfig())
    assert not output.exists()


def test_resolution_change_mid_record_keeps_the_aspect_ratio(tmp_path: Path) -> None:
    # A phone turned on its side: 320x240, then 240x320 from 1 s on (a new VP8 keyframe).
    sidecar = synthetic_record_write(
        tmp_path, SyntheticRecord(colour=BLUE, duration_s=2.0, resize_at_s=1.0, resized=(240, 320))
    )
    output = tmp_path / "mix.mp4"
    result = room_mix([sidecar], output, MixerConfig(display_stream_name=False))
    assert (result.width, result.height) == (320, 240)  # the canvas follows the first picture
    landscape, portrait = pictures_at(output, [0.5, 1.5])
    assert_colour(landscape, 10, 120, BLUE)
    # Portrait in a landscape canvas: 180x240 in the middle, black either side.
    assert_colour(portrait, 160, 120, BLUE)
    assert_colour(portrait, 40, 120, BLACK)
    assert_colour(portrait, 280, 120, BLACK)


def test_padded_record_joins_at_its_real_start(tmp_path: Path) -> None:
    from recording.padding import record_pad

    sidecars = [
        synthetic_record_write(
            tmp_path, SyntheticRecord(stream="a", participant="alice", colour=RED, duration_s=3.0, started_at_ms=START)
        ),
        synthetic_record_write(
            tmp_path,
            SyntheticRecord(stream="b", participant="bob", colour=BLUE, duration_s=1.5, started_at_ms=START + 1500),
        ),
    ]
    # Synchronized records (RECORDING_EMPTY_SHIFT): Bob's file now opens with 1.5 s of black and silence.
    assert record_pad(sidecars[1], START).padded_ms == pytest.approx(1500)
    output = tmp_path / "mix.mp4"
    result = room_mix(sidecars, output, MixerConfig(display_stream_name=False))
    assert result.duration_ms == 3000
    before, after = pictures_at(output, [1.0, 2.0])
    assert_colour(before, 320, 100, RED)  # Alice alone: Bob's padding is not a tile
    assert_colour(before, 600, 100, BLACK)
    assert_colour(after, 160, 100, RED)
    assert_colour(after, 480, 100, BLUE)


def test_an_unreadable_record_is_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = synthetic_record_write(tmp_path, SyntheticRecord(stream="good", colour=BLUE, duration_s=1.0))
    broken = synthetic_record_write(
        tmp_path, SyntheticRecord(stream="broken", duration_s=1.0, started_at_ms=START - 5000)
    )
    broken.with_suffix(".webm").write_bytes(b"not a webm file at all")
    output = tmp_path / "mix.mp4"
    result = room_mix([broken, good], output, MixerConfig())
    # The broken record neither takes a tile nor stretches the timeline.
    assert (result.width, result.height, result.duration_ms) == (320, 240, 1000)
    assert "left out of the mix" in caplog.text and "broken.json" in caplog.text
    with pytest.raises(MixError, match="no readable records"):
        room_mix([broken], tmp_path / "none.mp4", MixerConfig())


def test_a_failing_progress_callback_does_not_stop_the_mix(tmp_path: Path) -> None:
    sidecar = synthetic_record_write(tmp_path, SyntheticRecord(duration_s=1.0))
    calls: list[int] = []

    def flaky(percent: int) -> None:
        calls.append(percent)
        raise RuntimeError("database is away")

    result = room_mix([sidecar], tmp_path / "mix.mp4", MixerConfig(), progress=flaky)
    assert result.frames == 30 and calls[-1] == 100


CHAT = [
    ChatLine("m0", "alice", "before the media: shown from 0 for 1 s", round(START) - 3000),
    ChatLine("m1", "bob", "Привет, 你好 👋", round(START) + 1500),
    ChatLine("m2", "alice", "a --> b <b>not bold</b> {\\b1}\\N\nsecond line", round(START) + 2200),
    ChatLine("m3", "bob", "the last word", round(START) + 3000),
    ChatLine("m4", "bob", "after the end: left out", round(START) + 4500),
]


def test_public_chat_becomes_a_mov_text_track_on_the_mix_clock(late_join: list[Path], tmp_path: Path) -> None:
    output = tmp_path / "mix.mp4"
    result = room_mix(late_join, output, MixerConfig(), chat=CHAT)
    streams = ffprobe(output)["streams"]
    assert [(stream["codec_type"], stream["codec_name"]) for stream in streams] == [
        ("video", "h264"), ("audio", "aac"), ("subtitle", "mov_text")
    ]
    assert streams[2]["codec_tag_string"] == "tx3g" and streams[2]["tags"]["handler_name"] == "Chat"
    assert result.media_started_at_ms == pytest.approx(START) and result.chat_cues == 4
    assert text_samples(output) == [
        (0.0, 1.0, "alice: before the media: shown from 0 for 1 s"),
        (1.5, 2.2, "bob: Привет, 你好 👋"),  # until the next message
        (2.2, 3.0, "alice: a --> b <b>not bold</b> {\\b1}\\N\nsecond line"),
        (3.0, 4.0, "bob: the last word"),  # ends with the mix
    ]
    assert float(ffprobe(output)["format"]["duration"]) == pytest.approx(4.0, abs=0.07)


def test_an_audio_only_mix_carries_the_chat_too(late_join: list[Path], tmp_path: Path) -> None:
    output = tmp_path / "mix.mp4"
    room_mix(late_join, output, MixerConfig(has_video=False), chat=CHAT[1:2])
    assert [stream["codec_name"] for stream in ffprobe(output)["streams"]] == ["aac", "mov_text"]
    assert text_samples(output) == [(1.5, 4.0, "bob: Привет, 你好 👋")]


def test_a_mix_without_chat_has_no_subtitle_track(late_join_mix: tuple[Path, MixResult, list[Any]]) -> None:
    output, result, _ = late_join_mix
    assert "subtitle" not in [stream["codec_type"] for stream in ffprobe(output)["streams"]]
    assert result.chat_cues == 0 and result.media_started_at_ms == pytest.approx(START)
