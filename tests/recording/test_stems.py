"""Audio stems rendered from synthetic records (tests/recording/synthetic.py):
each participant's beeps appear at their true time on the room's clock
(± 40 ms, measured in the decoded FLAC samples), every stem is as long as
the room, and silence fills where the participant was absent."""

from __future__ import annotations

import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from recording.mixing import MixError
from recording.stems import room_stems_render, stem_file_name
from tests.recording.probe import beep_onsets_s, ffprobe
from tests.recording.synthetic import DEFAULT_STARTED_AT_MS, SyntheticRecord, synthetic_record_write

TOLERANCE_S = 0.040
T0 = DEFAULT_STARTED_AT_MS


def stem_samples(path: Path) -> np.ndarray:  # type: ignore[type-arg]
    with av.open(str(path)) as container:
        return np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)])


def test_each_participant_gets_an_aligned_stem_of_the_rooms_length(tmp_path: Path) -> None:
    folder = tmp_path / "records"
    sidecars = [
        # Alice's audio arrived 60 ms late; her sender reports say so, and the stem undoes it as the mix does.
        synthetic_record_write(folder, SyntheticRecord(
            stream="a-cam", participant="alice", duration_s=3.0, beep_times_s=(1.0,), audio_offset_error_ms=60.0,
        )),
        # Bob joins 1.5 s later, drops, and comes back at 4.0 s with a second record.
        synthetic_record_write(folder, SyntheticRecord(
            stream="b-cam", participant="bob", duration_s=2.0, beep_times_s=(0.7,), started_at_ms=T0 + 1500,
        )),
        synthetic_record_write(folder, SyntheticRecord(
            stream="b-again", participant="bob", duration_s=1.0, beep_times_s=(0.3,), started_at_ms=T0 + 4000,
        )),
        # Carol showed her camera without a microphone: no stem of hers.
        synthetic_record_write(folder, SyntheticRecord(
            stream="c-cam", participant="carol", duration_s=2.0, has_audio=False, started_at_ms=T0 + 500,
        )),
    ]
    output = tmp_path / "stems" / "room-stems.zip"
    result = room_stems_render(sidecars, output)

    assert [(stem.participant, stem.file_name, stem.records) for stem in result.stems] == [
        ("alice", "alice.flac", 1), ("bob", "bob.flac", 2),
    ]
    assert result.media_started_at_ms == pytest.approx(T0)
    assert result.duration_ms == 5000  # bob's second record ends the room
    with zipfile.ZipFile(output) as archive:
        assert sorted(archive.namelist()) == ["alice.flac", "bob.flac"]
        archive.extractall(tmp_path / "out")
    assert [path.name for path in output.parent.iterdir()] == [output.name]  # no temporary left
    alice, bob = tmp_path / "out/alice.flac", tmp_path / "out/bob.flac"

    expected = {alice: [1.0], bob: [1.5 + 0.7, 4.0 + 0.3]}
    for path, beeps in expected.items():
        onsets = beep_onsets_s(path)
        assert len(onsets) == len(beeps), (path.name, onsets)
        for onset, beep in zip(onsets, beeps, strict=True):
            assert abs(onset - beep) <= TOLERANCE_S, (path.name, onset, beep)
        probe = ffprobe(path)["streams"][0]
        assert (probe["codec_name"], probe["sample_rate"], probe["channels"]) == ("flac", "48000", 1)
        samples = stem_samples(path)
        assert len(samples) == 5 * 48000, (path.name, len(samples))  # every stem is the room's length
    quiet = stem_samples(bob)
    # Exact digital silence before bob's first record and between his two.
    assert not quiet[: int(1.5 * 48000) - 480].any()
    assert not quiet[int(3.5 * 48000) + 480 : int(4.0 * 48000) - 480].any()
    assert not stem_samples(alice)[int(3.0 * 48000) + 480 :].any()  # after alice's record ended


def test_records_without_audio_make_no_stems(tmp_path: Path) -> None:
    sidecar = synthetic_record_write(tmp_path, SyntheticRecord(participant="carol", has_audio=False))
    with pytest.raises(MixError):
        room_stems_render([sidecar], tmp_path / "stems.zip")
    assert not (tmp_path / "stems.zip").exists()


def test_file_names_are_safe_and_unique() -> None:
    taken: set[str] = set()
    names = [stem_file_name(identity, taken) for identity in ("alice", "Alice", "../etc/passwd", "", "ян 李")]
    assert names == ["alice.flac", "Alice-2.flac", "etc_passwd.flac", "participant.flac", "ян_李.flac"]


def test_overlapping_records_of_one_participant_are_summed_across_chunks(tmp_path: Path) -> None:
    # Carol's camera beeps across the stems' 10 s chunk boundary; her screen
    # (with its sound) starts before that and overlaps the camera.
    sidecars = [
        synthetic_record_write(tmp_path, SyntheticRecord(
            stream="c-cam", participant="carol", duration_s=12.0, beep_times_s=(9.95,), has_video=False,
        )),
        synthetic_record_write(tmp_path, SyntheticRecord(
            stream="c-screen", participant="carol", kind="screen", duration_s=3.0, beep_times_s=(1.0,),
            has_video=False, started_at_ms=T0 + 9900,
        )),
    ]
    result = room_stems_render(sidecars, tmp_path / "stems.zip")
    assert [(stem.participant, stem.records) for stem in result.stems] == [("carol", 2)]
    with zipfile.ZipFile(tmp_path / "stems.zip") as archive:
        archive.extractall(tmp_path / "out")
    onsets = beep_onsets_s(tmp_path / "out/carol.flac")
    assert len(onsets) == 2, onsets
    assert abs(onsets[0] - 9.95) <= TOLERANCE_S and abs(onsets[1] - 10.9) <= TOLERANCE_S, onsets
    samples = stem_samples(tmp_path / "out/carol.flac")
    assert len(samples) == round(12.9 * 48000)  # until the screen record ends
    # The beep crossing the chunk boundary is whole: loud on both sides of 10.0 s.
    assert np.abs(samples[int(9.97 * 48000) : int(10.0 * 48000)]).max() > 8000
    assert np.abs(samples[int(10.0 * 48000) : int(10.03 * 48000)]).max() > 8000
