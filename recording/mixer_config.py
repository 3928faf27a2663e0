"""The offline mixer settings file (`OFFLINE_MIXER_CONFIG`), read like the reference's offline_mixer.json.

The reference ships `{"hasVideo": "true", "hasAudio": "true",
"mixerDisplayStreamName": true}`: strings and booleans mixed, so both are
accepted (strings case-insensitively, as a Java server's Boolean parsing
does). Other keys of the reference's mixer settings are ignored. The file is
checked when the app starts so a typo fails the deployment, not the first
mix after a meeting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

HAS_VIDEO_KEY = "hasVideo"
HAS_AUDIO_KEY = "hasAudio"
DISPLAY_STREAM_NAME_KEY = "mixerDisplayStreamName"


@dataclass(frozen=True)
class MixerConfig:
    has_video: bool = True
    has_audio: bool = True
    display_stream_name: bool = True


def mixer_config_load(path: str) -> MixerConfig:
    """Read the settings file at `path`; an empty path means the defaults (all true)."""
    if not path:
        return MixerConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ImproperlyConfigured(f"OFFLINE_MIXER_CONFIG {path}: cannot read ({error})") from error
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ImproperlyConfigured(f"OFFLINE_MIXER_CONFIG {path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise ImproperlyConfigured(f"OFFLINE_MIXER_CONFIG {path}: expected a JSON object, got {type(data).__name__}")
    return MixerConfig(
        has_video=_flag(data, HAS_VIDEO_KEY, path),
        has_audio=_flag(data, HAS_AUDIO_KEY, path),
        display_stream_name=_flag(data, DISPLAY_STREAM_NAME_KEY, path),
    )


def check_mixer_config() -> MixerConfig:
    """Load `settings.OFFLINE_MIXER_CONFIG`, raising ImproperlyConfigured if it is unusable."""
    from django.conf import settings

    return mixer_config_load(str(settings.OFFLINE_MIXER_CONFIG))


def _flag(data: dict[str, object], key: str, path: str) -> bool:
    value = data.get(key, True)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ImproperlyConfigured(
        f'OFFLINE_MIXER_CONFIG {path}: "{key}" must be true, false, "true" or "false", got {value!r}'
    )
