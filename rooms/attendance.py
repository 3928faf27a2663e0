"""Who attended a room, from when to when: sessions of one identity merged.

A person who reloads the page or drops and rejoins leaves several
sessions (``Participant`` rows) in a room; attendance is one row per
identity with the union of them: sessions that overlap or touch become one
period. Only what lies inside the asked window counts (a date range, or the
room's whole life). Pure: no database, so its rules are tested with
generated sessions (tests/rooms/test_attendance.py).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

# What a person can have published, in the order reports list them.
PUBLISHED_KINDS = ("camera", "screen", "audio")


@dataclass(frozen=True)
class Session:
    identity: str
    joined_at: datetime.datetime
    left_at: datetime.datetime  # for one still in when the room ended: the room's end
    published: frozenset[str] = frozenset()  # kinds of PUBLISHED_KINDS sent in this session


@dataclass(frozen=True)
class Period:
    start: datetime.datetime
    end: datetime.datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Attendance:
    identity: str
    periods: tuple[Period, ...]  # disjoint, not touching, in time order
    published: tuple[str, ...]  # in PUBLISHED_KINDS order

    @property
    def first_joined(self) -> datetime.datetime:
        return self.periods[0].start

    @property
    def last_left(self) -> datetime.datetime:
        return self.periods[-1].end

    @property
    def seconds(self) -> float:
        return sum(period.seconds for period in self.periods)

    @property
    def minutes(self) -> float:
        return self.seconds / 60


def periods_merge(periods: Iterable[Period]) -> list[Period]:
    """The union of ``periods`` as disjoint periods in time order; overlapping or touching ones become one."""
    merged: list[Period] = []
    for period in sorted(periods, key=lambda p: (p.start, p.end)):
        if merged and period.start <= merged[-1].end:
            if period.end > merged[-1].end:
                merged[-1] = Period(merged[-1].start, period.end)
        else:
            merged.append(period)
    return merged


def attendance_merge(
    sessions: Iterable[Session],
    *,
    window_start: datetime.datetime | None = None,
    window_end: datetime.datetime | None = None,
) -> list[Attendance]:
    """One row per identity that was in the room inside the window, by first join then identity.

    Sessions are clipped to the window; one with nothing inside it (or of no
    length) does not count, nor does what it published.
    """
    by_identity: dict[str, tuple[list[Period], set[str]]] = {}
    for session in sessions:
        start = max(session.joined_at, window_start) if window_start is not None else session.joined_at
        end = min(session.left_at, window_end) if window_end is not None else session.left_at
        if end <= start:
            continue
        periods, published = by_identity.setdefault(session.identity, ([], set()))
        periods.append(Period(start, end))
        published.update(session.published)
    rows = [
        Attendance(
            identity=identity,
            periods=tuple(periods_merge(periods)),
            published=tuple(kind for kind in PUBLISHED_KINDS if kind in published),
        )
        for identity, (periods, published) in by_identity.items()
    ]
    return sorted(rows, key=lambda row: (row.first_joined, row.identity))
