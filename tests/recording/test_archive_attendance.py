"""The attendance table of a room's archive page."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from tests.recording.archived_room import archived_room, joined, moment, published
from tests.recording.records_access import operator_client

pytestmark = pytest.mark.django_db


def test_the_room_page_lists_who_attended_with_sessions_merged(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_ROOT = tmp_path
    room = archived_room("weekly")
    first = joined(room, "alice", 0, 20_000, reason="disconnect")
    joined(room, "alice", 20_000, 50_000)  # back at once: one period
    joined(room, "alice", 55_000, 59_000)  # later again: a second one
    published(first, 1_000, 19_000)
    joined(room, "bob", 5_000, 35_000)
    published(joined(room, "Иван", 10_000, None), 12_000, kind="screen")  # in until the room ended (60 s)

    content = operator_client().get(f"/records/rooms/{room.live_id}/").content.decode()
    table = content.split('id="attendance"', 1)[1].split("</table>", 1)[0]
    rows = [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
         for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)
    ]

    def span(start_ms: int, end_ms: int) -> str:
        return f"{moment(start_ms):%H:%M:%S}\u2013{moment(end_ms):%H:%M:%S}"  # an en dash

    assert rows == [
        ["alice", f"{span(0, 50_000)}, {span(55_000, 59_000)}", "0.9", "camera"],
        ["bob", span(5_000, 35_000), "0.5", "—"],
        ["Иван", span(10_000, 60_000), "0.8", "screen"],
    ]
