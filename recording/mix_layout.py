"""Where every record goes in a room mix, and when: pure geometry, no media.

The canvas is sized once for the busiest moment: a grid of as many cells as
records are ever live at once, each cell the size of the largest input
picture, scaled down to fit 1920x1080. So two 640x480 records give
1280x480, the geometry of the reference's `pad=iw*2:ih` + `overlay=W/2:0`
merge, and a lone record keeps its own size. At each moment the live records
share the whole canvas: 1 fills it, 2 side by side, 3-4 in 2x2, 5-6 in 3x2,
7-9 in 3x3 and so on, a short last row centred; pictures keep their aspect
ratio inside their cell (letterbox). Records are ordered by start, so a
participant keeps their place relative to the others while people come and go.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_CANVAS = (1920, 1080)


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class RecordSpan:
    """When a record is live on the room timeline (ms from the room's start)."""

    index: int
    start_ms: float
    end_ms: float


@dataclass(frozen=True)
class LayoutSegment:
    """A stretch of the timeline with one set of live records; `cells[i]` is `records[i]`'s cell."""

    start_ms: float
    end_ms: float
    records: tuple[int, ...]
    cells: tuple[Rect, ...]

    def cell_of(self, record: int) -> Rect | None:
        try:
            return self.cells[self.records.index(record)]
        except ValueError:
            return None


def grid_shape(count: int) -> tuple[int, int]:
    """(columns, rows) for `count` tiles: 2 → 2x1, 3-4 → 2x2, 5-6 → 3x2, 7-9 → 3x3, 10-12 → 4x3."""
    if count <= 0:
        return 0, 0
    columns = math.ceil(math.sqrt(count))
    return columns, math.ceil(count / columns)


def canvas_size(max_live: int, cell: tuple[int, int], limit: tuple[int, int] = MAX_CANVAS) -> tuple[int, int]:
    columns, rows = grid_shape(max(1, max_live))
    width, height = columns * cell[0], rows * cell[1]
    scale = min(1.0, limit[0] / width, limit[1] / height)
    return _even(width * scale), _even(height * scale)


def grid_cells(count: int, canvas: tuple[int, int]) -> list[Rect]:
    """The cells of `count` tiles on the canvas, row by row; a short last row is centred."""
    columns, rows = grid_shape(count)
    cells = []
    for index in range(count):
        row, column = divmod(index, columns)
        in_row = min(columns, count - row * columns)
        shift = (columns - in_row) * canvas[0] / columns / 2
        left = _even(shift + column * canvas[0] / columns)
        right = _even(shift + (column + 1) * canvas[0] / columns)
        top, bottom = _even(row * canvas[1] / rows), _even((row + 1) * canvas[1] / rows)
        cells.append(Rect(left, top, right - left, bottom - top))
    return cells


def fit_rect(picture: tuple[int, int], cell: Rect) -> Rect:
    """The largest rectangle of the picture's aspect ratio centred in `cell`, even-sized for 4:2:0."""
    scale = min(cell.width / picture[0], cell.height / picture[1])
    width = min(cell.width, max(2, _even(picture[0] * scale)))
    height = min(cell.height, max(2, _even(picture[1] * scale)))
    return Rect(cell.x + _even((cell.width - width) / 2), cell.y + _even((cell.height - height) / 2), width, height)


def layout_plan(spans: Sequence[RecordSpan], canvas: tuple[int, int]) -> list[LayoutSegment]:
    """Cut the timeline wherever a record starts or ends; gaps with nothing live get an empty segment."""
    edges = sorted({edge for span in spans for edge in (span.start_ms, span.end_ms)})
    order = sorted(spans, key=lambda span: (span.start_ms, span.index))
    segments: list[LayoutSegment] = []
    for start, end in itertools.pairwise(edges):
        live = tuple(span.index for span in order if span.start_ms <= start and span.end_ms >= end)
        if segments and segments[-1].records == live:
            segments[-1] = LayoutSegment(segments[-1].start_ms, end, live, segments[-1].cells)
        else:
            segments.append(LayoutSegment(start, end, live, tuple(grid_cells(len(live), canvas))))
    return segments


def spans_max_live(spans: Sequence[RecordSpan]) -> int:
    """The most records live at one moment (a record ending as another starts does not overlap it)."""
    events = sorted([(span.start_ms, 1) for span in spans] + [(span.end_ms, -1) for span in spans])
    live = most = 0
    for _, change in events:
        live += change
        most = max(most, live)
    return most


class SegmentCursor:
    """Finds the segment of a time; times asked for mostly rise, so it walks instead of searching."""

    def __init__(self, segments: Sequence[LayoutSegment]) -> None:
        self.segments = segments
        self.position = 0

    def at(self, time_ms: float) -> LayoutSegment | None:
        segments = self.segments
        if not segments or time_ms < segments[0].start_ms or time_ms > segments[-1].end_ms:
            return None
        if time_ms < segments[self.position].start_ms:
            self.position = 0
        while self.position + 1 < len(segments) and time_ms >= segments[self.position].end_ms:
            self.position += 1
        return segments[self.position]


def _even(value: float) -> int:
    return int(value) // 2 * 2
