"""``manage.py loadtest`` against a real daphne (Redis, PostgreSQL, its
embedded media node): real aiortc publishers and subscribers, real chat,
the JSON report read back; and the clear refusals of a wrong address or key."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.processes import ROOT, free_port

pytestmark = pytest.mark.integration

KEY, SECRET = "load", "a-secret-long-enough-for-hs256-signing-0123"


def loadtest(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "loadtest", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def report_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.stdout, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_a_small_load_is_carried_and_measured(start_server, server_env) -> None:  # type: ignore[no-untyped-def]
    server = start_server("daphne", "web")
    result = loadtest(server_env, server.http_url, "--rooms", "2", "--publishers", "1", "--subscribers", "2",
                      "--chat-rate", "4", "--duration", "5", "--warmup", "1", "--json")
    report = report_of(result)
    assert result.returncode == 0, (report["failures"], report["errors"], result.stderr)
    assert report["passed"] and report["failures"] == []
    assert report["config"]["token_mode"] is False
    # the progress line, on stderr: off a terminal a line now and then, and the last one always
    assert result.stderr.splitlines()[-1].startswith("done: 5/5 s | joined 6/6 | publishing 2/2 | playing 4/4 |")

    assert report["participants"] == {"planned": 6, "joined": 6}
    assert report["join_ms"]["count"] == 6 and 0 < report["join_ms"]["p50"] <= report["join_ms"]["p95"] < 5000
    assert report["connect_ms"]["count"] == 6
    assert report["publishing"] == 2

    subscriptions = report["subscriptions"]
    assert len(subscriptions) == 4
    assert {(s["subscriber"].split("-")[-1], s["room"]) for s in subscriptions} == {
        (who, room) for who in ("sub0", "sub1") for room in {s["room"] for s in subscriptions}}
    for subscription in subscriptions:
        # published at 15 fps, counted over the 5 s window
        assert 12 <= subscription["fps"] <= 17, subscription
        assert 0 < subscription["first_frame_ms"] < 10_000, subscription
        assert subscription["window_s"] >= 4.5, subscription
        # the loss measure reads real timestamps: the frames received span as many steps as were counted
        assert subscription["frames"] >= 60, subscription
        assert subscription["frames_expected"] == pytest.approx(subscription["frames"], abs=2), subscription
        assert subscription["audio_frames"] >= 200, subscription  # 50 Opus frames a second
        assert subscription["packets_received"] > subscription["frames"], subscription
    media = report["media"]
    assert media["subscriptions_playing"] == 4 and media["first_frame_ms"]["count"] == 4

    chat = report["chat"]
    # 4 messages a second in each of 2 rooms for 5 s, each to the 2 others of its room
    assert 36 <= chat["accepted"] <= 42, chat
    assert chat["expected_deliveries"] == 2 * chat["accepted"]
    assert chat["delivered"] == chat["expected_deliveries"] and chat["lost"] == 0 and chat["loss_percent"] == 0
    assert 0 < chat["latency_ms"]["p50"] <= chat["latency_ms"]["p99"] < 2000
    assert report["errors"] == {"count": 0, "by_code": {}, "samples": []}


def test_tokens_thresholds_and_refusals(start_server, server_env) -> None:  # type: ignore[no-untyped-def]
    token_env = {"ROOM_AUTH": "token", "API_KEYS": f"{KEY}:{SECRET}"}
    server = start_server("daphne", "web", env=token_env)
    # The key is given to the command, not read from the environment (as from another host).
    client_env = {**server_env, "API_KEYS": ""}
    small = ("--rooms", "1", "--publishers", "1", "--subscribers", "1", "--chat-rate", "2", "--duration", "2",
             "--warmup", "0.5")

    # Signed tokens carry the participants in; asked for more fps than published, the run fails and says why.
    result = loadtest(client_env, server.ws_url, *small, "--token-key", f"{KEY}:{SECRET}", "--min-fps", "40",
                      "--json")
    report = report_of(result)
    assert result.returncode == 1, result.stderr
    assert report["config"]["token_mode"] is True
    assert report["participants"]["joined"] == 2 and report["media"]["subscriptions_playing"] == 1
    assert report["chat"]["delivered"] >= 3 and report["chat"]["lost"] == 0
    assert report["errors"]["count"] == 0
    assert report["passed"] is False
    assert len(report["failures"]) == 1 and report["failures"][0].startswith("1 subscriptions below 40 fps"), report

    wrong_key = loadtest(client_env, server.ws_url, *small, "--token-key", f"{KEY}:not-the-secret-{SECRET}")
    assert wrong_key.returncode == 2
    assert wrong_key.stdout == ""
    assert "the load test could not start: the server refused the session: token_invalid" in wrong_key.stderr

    port = free_port()
    wrong_url = loadtest(client_env, f"http://127.0.0.1:{port}/", *small)
    assert wrong_url.returncode == 2
    assert f"the load test could not start: cannot open ws://127.0.0.1:{port}/ws/rooms/" in wrong_url.stderr

    not_a_url = loadtest(client_env, "127.0.0.1:8000", *small)
    assert not_a_url.returncode == 2
    assert "URL must be http(s)://host[:port]/ or ws(s)://host[:port]/ws/rooms/" in not_a_url.stderr
