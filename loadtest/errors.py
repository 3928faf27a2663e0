"""Every error the server answered or caused, counted by code."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

# Samples kept beside the counts: enough to see what happened, never the whole flood.
SAMPLES_KEPT = 20


class ErrorLog:
    def __init__(self) -> None:
        self.by_code: Counter[str] = Counter()
        self.samples: list[dict[str, Any]] = []
        self._started = time.monotonic()

    def add(self, code: str, who: str, detail: str = "") -> None:
        self.by_code[code] += 1
        if len(self.samples) < SAMPLES_KEPT:
            self.samples.append({"at_s": round(time.monotonic() - self._started, 3), "code": code, "who": who,
                                 "detail": detail[:300]})

    @property
    def count(self) -> int:
        return sum(self.by_code.values())

    def summary(self) -> dict[str, Any]:
        return {"count": self.count, "by_code": dict(sorted(self.by_code.items())), "samples": self.samples}
