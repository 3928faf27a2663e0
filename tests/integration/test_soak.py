"""The soak (tests/bench/soak.py) for 45 seconds: 200 people churning over
two daphne processes, a media node and a worker; no ghost, no lost or
duplicated chat, keys and descriptors back to baseline at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.integration

SOAK_SECONDS = os.environ.get("SOAK_SECONDS", "45")


def test_churn_leaves_nothing_behind() -> None:
    result = subprocess.run(
        [sys.executable, "tests/bench/soak.py", "--duration", SOAK_SECONDS, "--clients", "200", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=float(SOAK_SECONDS) + 240,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    failed = [target for target in report["targets"] if target["passed"] is False]
    assert not failed, json.dumps({"failed": failed, "report": report}, indent=1)[:6000]
    seconds = float(SOAK_SECONDS)
    # The churn really happened (45 s on a busy 2-core machine: ~13,000 deliveries, ~800 visits).
    assert report["chat"]["deliveries due"] > 150 * seconds
    assert report["visits"] > 10 * seconds and report["plays"] >= 4
