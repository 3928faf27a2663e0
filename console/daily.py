"""The last days in figures: rooms opened, participant-minutes, recorded hours.

Days are calendar days in ``TIME_ZONE``. A stay or a record that spans
midnight counts on each day for the part of it that fell there; a stay
still open counts up to now (or to its room's finalization, when the room
ended without writing the stay's end).
"""

from __future__ import annotations

import bisect
import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from recording.models import Recording
from rooms.models import Participant, Room

Interval = tuple[datetime.datetime, datetime.datetime]


@dataclass(frozen=True)
class DailyHistory:
    days: list[datetime.date]
    rooms: list[int]
    participant_minutes: list[float]
    recorded_hours: list[float]


def day_starts(days: list[datetime.date]) -> list[datetime.datetime]:
    """Each day's first instant in the current time zone, and the instant after the last day."""
    zone = timezone.get_current_timezone()
    return [
        datetime.datetime.combine(day, datetime.time(), tzinfo=zone)
        for day in [*days, days[-1] + datetime.timedelta(days=1)]
    ]


def seconds_by_day(intervals: Iterable[Interval], days: list[datetime.date]) -> list[float]:
    """How many seconds of the intervals fall on each of ``days`` (consecutive, oldest first)."""
    starts = day_starts(days)
    totals = [0.0] * len(days)
    for begin, end in intervals:
        # Only the days the interval touches: a month of stays stays cheap.
        first = max(0, bisect.bisect_right(starts, begin) - 1)
        last = min(len(days), bisect.bisect_left(starts, end))
        for index in range(first, last):
            overlap = (min(end, starts[index + 1]) - max(begin, starts[index])).total_seconds()
            if overlap > 0:
                totals[index] += overlap
    return totals


def last_days(count: int, today: datetime.date) -> list[datetime.date]:
    return [today - datetime.timedelta(days=back) for back in range(count - 1, -1, -1)]


def _stays(first: datetime.datetime, end: datetime.datetime, now: datetime.datetime) -> Iterable[Interval]:
    stays = Participant.objects.filter(joined_at__lt=end).filter(Q(left_at__isnull=True) | Q(left_at__gt=first))
    for joined_at, left_at, finalized_at in stays.values_list("joined_at", "left_at", "room__finalized_at").iterator():
        yield joined_at, left_at or finalized_at or now


def _records(first: datetime.datetime, end: datetime.datetime, now: datetime.datetime) -> Iterable[Interval]:
    # Stream records: the hours of media written (a room mix repeats them).
    records = Recording.objects.filter(kind=Recording.Kind.STREAM, started_at__lt=end)
    rows = records.values_list("started_at", "ended_at", "duration_ms", "status").iterator()
    for started_at, ended_at, duration_ms, status in rows:
        if duration_ms is not None:
            stop = started_at + datetime.timedelta(milliseconds=duration_ms)
        elif ended_at is not None:
            stop = ended_at
        elif status == Recording.Status.RECORDING:
            stop = now
        else:
            continue
        if stop > first:
            yield started_at, stop


def daily_history(*, count: int = 30, now: datetime.datetime | None = None) -> DailyHistory:
    """The last ``count`` days up to today, from the database."""
    now = now or timezone.now()
    days = last_days(count, timezone.localtime(now).date())
    starts = day_starts(days)
    first, end = starts[0], starts[-1]
    opened = dict(
        Room.objects.filter(created_at__gte=first, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .order_by().values_list("day").annotate(count=Count("id")).values_list("day", "count")
    )
    minutes = [seconds / 60 for seconds in seconds_by_day(_stays(first, end, now), days)]
    hours = [seconds / 3600 for seconds in seconds_by_day(_records(first, end, now), days)]
    return DailyHistory(
        days=days, rooms=[opened.get(day, 0) for day in days], participant_minutes=minutes, recorded_hours=hours
    )
