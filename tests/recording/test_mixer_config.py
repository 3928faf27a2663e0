"""OFFLINE_MIXER_CONFIG: the reference's offline_mixer.json keys, strings or booleans, errors at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from recording.mixer_config import MixerConfig, check_mixer_config, mixer_config_load

BASE_DIR = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, content: str) -> str:
    path = tmp_path / "offline_mixer.json"
    path.write_text(content)
    return str(path)


def test_empty_path_means_all_true() -> None:
    assert mixer_config_load("") == MixerConfig(has_video=True, has_audio=True, display_stream_name=True)


def test_reference_default_file_mixing_strings_and_booleans(tmp_path: Path) -> None:
    reference = '{\n  "hasVideo": "true",\n  "hasAudio": "true",\n  "mixerDisplayStreamName": true\n}\n'
    assert mixer_config_load(write(tmp_path, reference)) == MixerConfig(True, True, True)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"hasVideo": "false"}, MixerConfig(has_video=False)),
        ({"hasAudio": False}, MixerConfig(has_audio=False)),
        ({"mixerDisplayStreamName": "FALSE"}, MixerConfig(display_stream_name=False)),
        ({"hasVideo": " True ", "hasAudio": "false", "mixerDisplayStreamName": False}, MixerConfig(True, False, False)),
        ({}, MixerConfig()),
        # The reference's other mixer settings are accepted and ignored.
        ({"hasAudio": "false", "mixerVideoLayout": "GRID", "mixerOutputWidth": 1280}, MixerConfig(has_audio=False)),
    ],
)
def test_values(tmp_path: Path, content: dict[str, object], expected: MixerConfig) -> None:
    assert mixer_config_load(write(tmp_path, json.dumps(content))) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"hasVideo": "yes"}', '"hasVideo" must be true, false, "true" or "false", got \'yes\''),
        ('{"hasAudio": 1}', '"hasAudio" must be'),
        ('{"mixerDisplayStreamName": null}', '"mixerDisplayStreamName" must be'),
        ('{"hasVideo": "true",}', "not valid JSON"),
        ('["hasVideo"]', "expected a JSON object, got list"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ImproperlyConfigured) as error:
        mixer_config_load(path)
    assert path in str(error.value) and message in str(error.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="cannot read"):
        mixer_config_load(str(tmp_path / "absent.json"))


def test_check_reads_the_setting(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.OFFLINE_MIXER_CONFIG = write(tmp_path, '{"hasVideo": "false"}')
    assert check_mixer_config() == MixerConfig(has_video=False)


def test_bad_file_stops_start_up(tmp_path: Path) -> None:
    env = {**os.environ, "OFFLINE_MIXER_CONFIG": write(tmp_path, '{"hasAudio": "maybe"}')}
    completed = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode != 0
    assert 'ImproperlyConfigured: OFFLINE_MIXER_CONFIG' in completed.stderr and '"hasAudio"' in completed.stderr
