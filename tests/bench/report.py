"""What the benchmarks report: progress lines, table cells, percentiles, the Targets section and the exit status.

Every benchmark prints Markdown on stdout and its progress on stderr; those
with targets end with a "Targets" section of PASS/FAIL lines and exit 1 if
one fails, 2 if a run failed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field


def log(message: str) -> None:
    """A progress line, on stderr: stdout is the report."""
    print(message, file=sys.stderr, flush=True)


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 when there are no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))])


@dataclass
class Target:
    name: str
    value: str
    passed: bool | None  # None: not measured
    points: list[str] = field(default_factory=list)


def targets_markdown(results: Sequence[Target]) -> list[str]:
    """The "Targets" section: one PASS/FAIL line per target."""
    lines = ["## Targets", ""]
    for target in results:
        verdict = {True: "PASS", False: "FAIL", None: "not measured"}[target.passed]
        failing = f" (failing: {', '.join(target.points)})" if target.points else ""
        lines.append(f"- **{verdict}** {target.name}: {target.value}{failing}")
    return lines


def exit_status(*, run_failed: bool, results: Sequence[Target]) -> int:
    """2 if a run failed, else 1 if a target failed, else 0."""
    if run_failed:
        return 2
    return 1 if any(target.passed is False for target in results) else 0
