"""Recording settings that cannot work stop start-up with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def test_a_hook_that_is_not_executable_fails_the_checks(settings, tmp_path: Path) -> None:
    script = tmp_path / "hook.sh"
    script.write_text("#!/bin/sh\n")
    settings.ON_MULTIPLE_RECORD_HOOK = str(script)
    with pytest.raises(SystemCheckError, match=r"recording\.E001.*is not an executable file"):
        call_command("check")
    script.chmod(0o755)
    call_command("check")
