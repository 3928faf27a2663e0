"""Merging a room's sessions into attendance: properties over generated sessions."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from rooms.attendance import PUBLISHED_KINDS, Attendance, Period, Session, attendance_merge, periods_merge

T0 = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)


def at(second: int) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=second)


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    start = draw(st.integers(0, 200))
    return Session(
        identity=draw(st.sampled_from(["alice", "bob", "Иван", "李"])),
        joined_at=at(start), left_at=at(start + draw(st.integers(0, 60))),
        published=frozenset(draw(st.sets(st.sampled_from(PUBLISHED_KINDS)))),
    )


def covered(periods: list[Period] | tuple[Period, ...]) -> set[int]:
    """The whole seconds a set of periods covers (times here are whole seconds)."""
    return {second for p in periods for second in range(int((p.start - T0).total_seconds()),
                                                         int((p.end - T0).total_seconds()))}


@given(st.lists(sessions(), max_size=25))
def test_merged_periods_are_ordered_apart_and_cover_exactly_the_sessions(items: list[Session]) -> None:
    rows = attendance_merge(items)
    assert rows == sorted(rows, key=lambda row: (row.first_joined, row.identity))
    assert len({row.identity for row in rows}) == len(rows)
    for row in rows:
        own = [s for s in items if s.identity == row.identity and s.left_at > s.joined_at]
        for earlier, later in zip(row.periods, row.periods[1:], strict=False):
            assert earlier.end < later.start  # apart: touching sessions were merged
        assert all(period.end > period.start for period in row.periods)
        assert covered(row.periods) == covered([Period(s.joined_at, s.left_at) for s in own])
        assert row.seconds == len(covered(row.periods))
        # Every session lies inside exactly one period.
        for session in own:
            assert sum(p.start <= session.joined_at and session.left_at <= p.end for p in row.periods) == 1
        assert set(row.published) == set().union(*(s.published for s in own))
    # Sessions of no length leave no trace.
    assert {row.identity for row in rows} == {s.identity for s in items if s.left_at > s.joined_at}


@given(st.lists(sessions(), max_size=25), st.randoms())
def test_the_order_sessions_come_in_does_not_matter(items: list[Session], random: object) -> None:
    shuffled = list(items)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert attendance_merge(shuffled) == attendance_merge(items)


@given(st.lists(sessions(), max_size=25), st.integers(0, 260), st.integers(0, 120))
def test_a_window_keeps_only_what_lies_inside_it(items: list[Session], start: int, length: int) -> None:
    window = Period(at(start), at(start + length))
    rows = attendance_merge(items, window_start=window.start, window_end=window.end)
    whole = {row.identity: row for row in attendance_merge(items)}
    for row in rows:
        assert all(window.start <= p.start and p.end <= window.end for p in row.periods)
        assert covered(row.periods) == covered(whole[row.identity].periods) & set(range(start, start + length))


def test_touching_and_overlapping_sessions_merge_and_a_gap_does_not() -> None:
    rows = attendance_merge([
        Session("alice", at(0), at(60), frozenset({"camera"})),
        Session("alice", at(60), at(90)),  # a reload: rejoined the moment she left
        Session("alice", at(80), at(120), frozenset({"audio"})),  # a second tab
        Session("alice", at(300), at(360), frozenset({"screen"})),
        Session("bob", at(30), at(45)),
    ])
    assert rows == [
        Attendance("alice", (Period(at(0), at(120)), Period(at(300), at(360))), ("camera", "screen", "audio")),
        Attendance("bob", (Period(at(30), at(45)),), ()),
    ]
    assert rows[0].minutes == 3.0
    assert periods_merge([]) == []
