"""Attendance as a CSV file that spreadsheets open safely.

UTF-8 with a byte order mark, so Excel reads names in any script; a cell
that starts with a character a spreadsheet takes for a formula (``=``,
``+``, ``-``, ``@``, or a tab or carriage return that hides one) gets a
leading apostrophe, so a login like ``=HYPERLINK(...)`` stays text
(OWASP's "CSV injection").
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable

from rooms.attendance_selectors import RoomAttendance

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HEADER = ("room", "room id", "identity", "first joined (UTC)", "last left (UTC)", "minutes", "periods (UTC)",
          "published")


def csv_cell(value: str) -> str:
    """``value`` as a cell no spreadsheet runs as a formula."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def _utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def attendance_csv(attendance: Iterable[RoomAttendance]) -> str:
    """One line per room and identity: from when to when (each merged period), minutes, what they published."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for item in attendance:
        for row in item.rows:
            periods = "; ".join(f"{_utc(period.start)} to {_utc(period.end)}" for period in row.periods)
            cells = (
                item.room.name, item.room.live_id, row.identity, _utc(row.first_joined), _utc(row.last_left),
                f"{row.minutes:.1f}", periods, " ".join(row.published),
            )
            writer.writerow([csv_cell(cell) for cell in cells])
    return BOM + out.getvalue()
