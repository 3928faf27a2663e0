"""`manage.py check --deploy` has no surprises."""

import os

from tests.processes import manage


def test_deploy_check_is_clean_behind_https(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {
        **os.environ, "HTTPS": "true", "SECRET_KEY": "k" * 20 + "x9-Qz" * 10, "VAR_DIR": str(tmp_path),
        "ROOM_AUTH": "token", "API_KEYS": "main:" + "r4nd0m-S3cr3t" * 4,
    }
    output = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert "no issues" in output


def test_deploy_check_warns_about_open_rooms_and_short_secrets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from tests.processes import ROOT

    env = {
        **os.environ, "HTTPS": "true", "SECRET_KEY": "k" * 20 + "x9-Qz" * 10, "VAR_DIR": str(tmp_path),
        "ROOM_AUTH": "open", "API_KEYS": "main:short", "WHIP_TOKEN": "obs",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert "(rooms.W001) ROOM_AUTH is open" in result.stderr
    assert "(rooms.W002) API_KEYS secrets shorter than 32 characters: main." in result.stderr
    assert "(rooms.W003) WHIP_TOKEN is shorter than 32 characters." in result.stderr


def test_deploy_check_warns_about_turn_without_a_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from tests.processes import ROOT

    env = {
        **os.environ, "HTTPS": "true", "SECRET_KEY": "k" * 20 + "x9-Qz" * 10, "VAR_DIR": str(tmp_path),
        "ROOM_AUTH": "token", "API_KEYS": "main:" + "r4nd0m-S3cr3t" * 4,
        "TURN_URLS": "turn:turn.example.com:3478?transport=udp,turns:turn.example.com:443?transport=tcp",
    }
    env.pop("TURN_SHARED_SECRET", None)
    command = [sys.executable, "manage.py", "check", "--deploy"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert "(rooms.W004) TURN_URLS is set without TURN_SHARED_SECRET" in result.stderr
    env["TURN_SHARED_SECRET"] = "short"
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert "(rooms.W005) TURN_SHARED_SECRET is shorter than 32 characters." in result.stderr
    env["TURN_SHARED_SECRET"] = "t" * 40
    assert "no issues" in manage(env, "check", "--deploy", "--fail-level", "WARNING")


def test_deploy_check_on_plain_http_names_only_https_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from tests.processes import ROOT

    env = {**os.environ, "SECRET_KEY": "k" * 20 + "x9-Qz" * 10, "VAR_DIR": str(tmp_path)}
    env.pop("HTTPS", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    found = {line.split(")")[0].split("(")[-1] for line in result.stderr.splitlines() if "(security." in line}
    assert found == {"security.W004", "security.W008", "security.W012", "security.W016"}


def test_deploy_check_is_clean_with_the_documented_production_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """deploy/env.example as an operator fills it: only the values marked CHANGE differ."""
    from tests.recipe import env_file

    production = env_file()
    env = {
        **os.environ, **production,
        "SECRET_KEY": "k" * 20 + "x9-Qz" * 10, "API_KEYS": "main:" + "r4nd0m-S3cr3t" * 4,
        "VAR_DIR": str(tmp_path), "RECORDINGS_ROOT": str(tmp_path / "recordings"),
    }
    output = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert "no issues" in output
    # The example's own placeholders are long enough to pass the checks, so
    # they must at least say CHANGE.
    assert "CHANGE" in production["SECRET_KEY"] and "CHANGE" in production["API_KEYS"]
