"""Start-up checks of the recording settings (``manage.py check`` runs them)."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register


@register()
def hook_is_executable(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    hook = settings.ON_MULTIPLE_RECORD_HOOK
    if hook and not (os.path.isfile(hook) and os.access(hook, os.X_OK)):
        return [
            Error(
                f"ON_MULTIPLE_RECORD_HOOK {hook!r} is not an executable file",
                hint="Point it at a script with its executable bit set, or leave it empty.",
                id="recording.E001",
            )
        ]
    return []
