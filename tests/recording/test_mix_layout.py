"""Mix geometry: grid shapes, canvas size, cells, letterboxing and the timeline's segments."""

from __future__ import annotations

import pytest

from recording.mix_layout import (
    RecordSpan,
    Rect,
    SegmentCursor,
    canvas_size,
    fit_rect,
    grid_cells,
    grid_shape,
    layout_plan,
    spans_max_live,
)


@pytest.mark.parametrize(
    ("count", "shape"),
    [(1, (1, 1)), (2, (2, 1)), (3, (2, 2)), (4, (2, 2)), (5, (3, 2)), (6, (3, 2)), (7, (3, 3)), (10, (4, 3))],
)
def test_grid_shape(count: int, shape: tuple[int, int]) -> None:
    assert grid_shape(count) == shape


def test_canvas_of_two_640x480_is_the_reference_merge() -> None:
    # ffmpeg "[0:v]pad=iw*2:ih[int];[int][1:v]overlay=W/2:0" on two 640x480 inputs: 1280x480.
    assert canvas_size(2, (640, 480)) == (1280, 480)
    assert grid_cells(2, (1280, 480)) == [Rect(0, 0, 640, 480), Rect(640, 0, 640, 480)]


def test_canvas_keeps_a_lone_record_and_shrinks_big_grids() -> None:
    assert canvas_size(1, (640, 480)) == (640, 480)
    assert canvas_size(9, (640, 480)) == (1440, 1080)  # 1920x1440 scaled to fit 1920x1080
    assert canvas_size(2, (1280, 720)) == (1920, 540)


def test_short_last_row_is_centred() -> None:
    cells = grid_cells(3, (1280, 960))
    assert cells[:2] == [Rect(0, 0, 640, 480), Rect(640, 0, 640, 480)]
    assert cells[2] == Rect(320, 480, 640, 480)


def test_fit_rect_letterboxes_and_stays_even() -> None:
    assert fit_rect((640, 480), Rect(0, 0, 1280, 480)) == Rect(320, 0, 640, 480)  # pillarbox
    assert fit_rect((1280, 720), Rect(640, 0, 640, 480)) == Rect(640, 60, 640, 360)  # letterbox
    odd = fit_rect((333, 201), Rect(0, 0, 427, 240))
    assert all(value % 2 == 0 for value in (odd.x, odd.y, odd.width, odd.height))


def test_plan_follows_joins_and_leaves_in_start_order() -> None:
    spans = [RecordSpan(0, 1000, 5000), RecordSpan(1, 0, 3000), RecordSpan(2, 6000, 7000)]
    assert spans_max_live(spans) == 2
    plan = layout_plan(spans, (1280, 480))
    assert [(segment.start_ms, segment.end_ms, segment.records) for segment in plan] == [
        (0, 1000, (1,)),
        (1000, 3000, (1, 0)),  # record 1 started first: it keeps the left cell
        (3000, 5000, (0,)),
        (5000, 6000, ()),  # nobody live: an empty canvas
        (6000, 7000, (2,)),
    ]
    assert plan[1].cell_of(0) == Rect(640, 0, 640, 480) and plan[1].cell_of(2) is None
    cursor = SegmentCursor(plan)
    assert [cursor.at(time_ms) for time_ms in (0, 999, 1000, 6500, 7000)] == [
        plan[0], plan[0], plan[1], plan[4], plan[4],
    ]
    assert cursor.at(500) is plan[0] and cursor.at(7001) is None


def test_a_record_ending_as_another_starts_does_not_share_the_canvas() -> None:
    spans = [RecordSpan(0, 0, 1000), RecordSpan(1, 1000, 2000)]
    assert spans_max_live(spans) == 1
    assert [segment.records for segment in layout_plan(spans, (640, 480))] == [(0,), (1,)]
