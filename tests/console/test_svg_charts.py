"""Daily series as SVG bars: heights in proportion, empty days flat, text escaped."""

from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ElementTree

import pytest

from console.svg_charts import BOTTOM, HEIGHT, TOP, bar_chart, nice_top

SVG = "{http://www.w3.org/2000/svg}"
DAYS = [datetime.date(2026, 11, 1) + datetime.timedelta(days=n) for n in range(30)]


def _bars(svg: str) -> list[ElementTree.Element]:
    return ElementTree.fromstring(svg).findall(f"{SVG}rect")


def test_bars_are_in_proportion_to_the_values() -> None:
    values = [0.0] * 30
    values[3], values[10], values[29] = 5.0, 10.0, 2.5
    bars = _bars(bar_chart(DAYS, values, title="Rooms", unit="rooms"))
    assert len(bars) == 30
    heights = [float(bar.get("height", "")) for bar in bars]
    plot = HEIGHT - TOP - BOTTOM
    # 10 is the largest and a round top: it fills the plot, 5 half of it.
    assert heights[10] == pytest.approx(plot) and heights[3] == pytest.approx(plot / 2)
    assert heights[29] == pytest.approx(plot / 4, abs=0.1)
    # Each bar stands on the baseline and sits right of the one before.
    for bar in bars:
        assert float(bar.get("y", "")) + float(bar.get("height", "")) == pytest.approx(TOP + plot, abs=0.11)
    xs = [float(bar.get("x", "")) for bar in bars]
    assert xs == sorted(xs) and len(set(xs)) == 30
    assert bars[10].get("data-day") == "2026-11-11" and bars[10].get("data-value") == "10"
    assert bars[10].findtext(f"{SVG}title") == "2026-11-11: 10 rooms"


def test_empty_days_are_flat_bars_that_still_say_so() -> None:
    bars = _bars(bar_chart(DAYS, [0.0] * 30, title="Recorded hours", unit="hours"))
    assert [float(bar.get("height", "")) for bar in bars] == [0.0] * 30
    assert bars[0].findtext(f"{SVG}title") == "2026-11-01: 0 hours"


def test_axis_and_dates() -> None:
    svg = bar_chart(DAYS, [float(n) for n in range(30)], title="Minutes", unit="minutes")
    labels = [text.text for text in ElementTree.fromstring(svg).findall(f"{SVG}text")]
    # 29 rounds up to 50; then half of it and zero.
    assert labels[:3] == ["50", "25", "0"]
    # The last day and every seventh before it.
    assert labels[3:] == ["02 Nov", "09 Nov", "16 Nov", "23 Nov", "30 Nov"]


def test_title_is_escaped() -> None:
    svg = bar_chart(DAYS[:2], [1.0, 2.0], title='<script>"x"</script>', unit="u")
    assert "<script>" not in svg
    assert ElementTree.fromstring(svg).findtext(f"{SVG}title") == '<script>"x"</script>'


def test_one_value_per_day() -> None:
    with pytest.raises(ValueError):
        bar_chart(DAYS, [1.0], title="t", unit="u")


@pytest.mark.parametrize(("largest", "top"), [(0, 1), (0.3, 0.5), (1, 1), (7, 10), (11, 20), (24, 25), (2600, 5000)])
def test_nice_top(largest: float, top: float) -> None:
    assert nice_top(largest) == pytest.approx(top)


def test_small_values_keep_their_decimals() -> None:
    svg = bar_chart(DAYS[:2], [0.25, 2.5], title="t", unit="hours")
    assert re.search(r"<title>2026-11-01: 0\.25 hours</title>", svg)
    assert re.search(r"<title>2026-11-02: 2\.5 hours</title>", svg)
