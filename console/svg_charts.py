"""Daily series drawn as inline SVG bar charts, on the server: no script, no library.

One bar per day, scaled to the largest value (a nice round top, so the
axis reads as a plain number); a day without any has a bar of height 0
and still its tooltip. Every text is escaped: values and labels are
numbers and dates, but the title comes from the caller.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 640
HEIGHT = 180
# Room for the axis labels: left for the values, bottom for the dates.
LEFT = 44
BOTTOM = 22
TOP = 8
RIGHT = 8


def nice_top(largest: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above ``largest`` (1 for none)."""
    if largest <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(largest))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= largest * (1 - 1e-9):
            return step * power
    return 10 * power


def _number(value: float) -> str:
    if value >= 10 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def bar_chart(
    days: Sequence[datetime.date],
    values: Sequence[float],
    *,
    title: str,
    unit: str,
    value_text: Callable[[float], str] = _number,
) -> SafeString:
    if len(days) != len(values):
        raise ValueError("one value per day")
    top = nice_top(max(values, default=0))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / max(1, len(days))
    bar_width = max(1.0, slot * 0.8)
    baseline = TOP + plot_height
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        # Axis: the top value, half of it, and zero, with faint guides.
        *(
            f'<line class="guide" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(value_text(value))}</text>'
            for value, y in ((top, TOP), (top / 2, TOP + plot_height / 2), (0.0, baseline))
        ),
    ]
    for index, (day, value) in enumerate(zip(days, values, strict=True)):
        height = plot_height * max(0.0, value) / top
        x = LEFT + index * slot + (slot - bar_width) / 2
        label = f"{day.isoformat()}: {value_text(value)} {unit}"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{baseline - height:.1f}" width="{bar_width:.1f}" '
            f'height="{height:.1f}" data-day="{day.isoformat()}" data-value="{value:g}">'
            f"<title>{escape(label)}</title></rect>"
        )
        # A date under the last bar and every seventh before it.
        if (len(days) - 1 - index) % 7 == 0:
            # The last one ends at its bar's right edge, inside the picture.
            last = index == len(days) - 1
            anchor, label_x = ("end", x + bar_width) if last else ("middle", x + bar_width / 2)
            parts.append(
                f'<text class="axis" x="{label_x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
                f"{day.strftime('%d %b')}</text>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text above is escaped
