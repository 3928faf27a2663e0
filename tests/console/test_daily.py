"""The last 30 days from the database: stays and records split at midnight, empty days zero."""

from __future__ import annotations

import datetime

import pytest

from console.daily import daily_history, last_days, seconds_by_day
from recording.models import Recording
from rooms.models import Participant, Room

UTC = datetime.UTC
NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _at(day: int, hour: float) -> datetime.datetime:
    return datetime.datetime(2026, 11, day, tzinfo=UTC) + datetime.timedelta(hours=hour)


def test_an_interval_over_midnight_counts_on_both_days() -> None:
    days = last_days(3, datetime.date(2026, 11, 30))
    assert days == [datetime.date(2026, 11, 28), datetime.date(2026, 11, 29), datetime.date(2026, 11, 30)]
    seconds = seconds_by_day([(_at(28, 23.5), _at(29, 0.25)), (_at(30, 1), _at(30, 2))], days)
    assert seconds == [1800.0, 900.0, 3600.0]


def test_intervals_outside_the_days_count_nothing_and_edges_are_clipped() -> None:
    days = last_days(2, datetime.date(2026, 11, 30))
    seconds = seconds_by_day([(_at(20, 0), _at(21, 0)), (_at(28, 22), _at(29, 1)), (_at(30, 24.5), _at(30, 26))], days)
    assert seconds == [3600.0, 0.0]


@pytest.mark.django_db
def test_daily_history_from_rows() -> None:
    early = Room.objects.create(name="early", live_id="l1", status=Room.Status.FINALIZED, finalized_at=_at(28, 2))
    late = Room.objects.create(name="late", live_id="l2")
    Room.objects.filter(pk=early.pk).update(created_at=_at(28, 0))
    Room.objects.filter(pk=late.pk).update(created_at=_at(30, 11))
    old = Room.objects.create(name="old", live_id="l0", status=Room.Status.FINALIZED)
    Room.objects.filter(pk=old.pk).update(created_at=_at(1, 0) - datetime.timedelta(days=40))
    # 60 minutes on the 28th; one stay the finalization ended (30 min); one still open (60 min to NOW).
    Participant.objects.create(room=early, login="a", session="s1", joined_at=_at(28, 0), left_at=_at(28, 1))
    Participant.objects.create(room=early, login="b", session="s2", joined_at=_at(28, 1.5))
    Participant.objects.create(room=late, login="c", session="s3", joined_at=_at(30, 11))
    record = Recording.objects.create(room=early, kind=Recording.Kind.STREAM, stream_live_id="x",
                                      status=Recording.Status.READY, duration_ms=2 * 3600_000)
    Recording.objects.filter(pk=record.pk).update(started_at=_at(27, 23))
    # A room mix repeats its stream records: not counted again.
    mix = Recording.objects.create(room=early, kind=Recording.Kind.ROOM, duration_ms=9 * 3600_000)
    Recording.objects.filter(pk=mix.pk).update(started_at=_at(28, 3))

    history = daily_history(count=30, now=NOW)
    assert len(history.days) == 30 and history.days[-1] == datetime.date(2026, 11, 30)
    by_day = dict(zip(history.days, zip(history.rooms, history.participant_minutes, history.recorded_hours,
                                        strict=True), strict=True))
    assert by_day[datetime.date(2026, 11, 28)] == (1, pytest.approx(90.0), pytest.approx(1.0))
    assert by_day[datetime.date(2026, 11, 27)] == (0, 0.0, pytest.approx(1.0))
    assert by_day[datetime.date(2026, 11, 30)] == (1, pytest.approx(60.0), 0.0)
    assert sum(history.rooms) == 2
    assert by_day[datetime.date(2026, 11, 15)] == (0, 0.0, 0.0)
