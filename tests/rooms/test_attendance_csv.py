"""Attendance as the admin's CSV: real joins and leaves over the consumer, the rows behind them, the file."""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import time

import pytest
from django.test import Client

from audit.models import AuditEntry
from rooms.attendance_csv import BOM, HEADER, attendance_csv, csv_cell
from rooms.attendance_selectors import attendance_between, rooms_attendance, stream_published_kinds
from rooms.models import Participant, Room, Stream
from tests.wsclient import ProtocolClient

pytestmark = pytest.mark.django_db(transaction=True)


def csv_rows(content: str) -> list[dict[str, str]]:
    assert content.startswith(BOM)
    rows = list(csv.reader(io.StringIO(content.removeprefix(BOM))))
    assert tuple(rows[0]) == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]


def utc(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.UTC).timestamp()


def periods(cell: str) -> list[tuple[float, float]]:
    return [(utc(start), utc(end)) for start, end in (part.split(" to ") for part in cell.split("; "))]


async def test_the_csv_matches_the_joins_and_leaves_made(admin_client: Client) -> None:
    alice, bob = await ProtocolClient.connected("alice"), await ProtocolClient.connected("bob")
    moments: dict[str, tuple[float, float]] = {}

    async def act(name: str, client: ProtocolClient, kind: str) -> None:
        before = time.time()
        await client.request(kind, room="standup")
        moments[name] = (before, time.time())

    def when(name: str, moment: float) -> bool:
        """``moment`` (whole seconds, as the CSV cuts them) is that of the request ``name``."""
        before, after = moments[name]
        return int(before) <= moment <= after

    await act("alice joins", alice, "room.join")
    await act("bob joins", bob, "room.join")
    await act("bob leaves", bob, "room.leave")
    await asyncio.sleep(1.1)  # apart by more than the CSV's second: two periods, not one
    await act("bob rejoins", bob, "room.join")
    await act("bob leaves again", bob, "room.leave")
    await act("alice leaves", alice, "room.leave")  # the last: the room ends
    await alice.close()
    await bob.close()

    room = await Room.objects.aget(name="standup")
    assert room.status == Room.Status.FINALIZED
    rows = {row["identity"]: row for row in csv_rows(await admin_csv(admin_client, room))}
    assert list(rows) == ["alice", "bob"]
    assert all(row["room"] == "standup" and row["room id"] == room.live_id for row in rows.values())
    [(alice_from, alice_to)] = periods(rows["alice"]["periods (UTC)"])
    assert when("alice joins", alice_from) and when("alice leaves", alice_to)
    assert (utc(rows["alice"]["first joined (UTC)"]), utc(rows["alice"]["last left (UTC)"])) == (alice_from, alice_to)
    (first_from, first_to), (again_from, again_to) = periods(rows["bob"]["periods (UTC)"])
    assert when("bob joins", first_from) and when("bob leaves", first_to)
    assert when("bob rejoins", again_from) and when("bob leaves again", again_to)
    # Minutes are those of the sessions, to a tenth.
    for login, row in rows.items():
        sessions = [p async for p in Participant.objects.filter(room=room, login=login)]
        seconds = sum((p.left_at - p.joined_at).total_seconds() for p in sessions if p.left_at)
        assert float(row["minutes"]) == pytest.approx(seconds / 60, abs=0.05)
        assert row["published"] == ""


async def admin_csv(admin_client: Client, room: Room) -> str:
    from asgiref.sync import sync_to_async

    @sync_to_async
    def download() -> str:
        response = admin_client.post(
            "/admin/rooms/room/", {"action": "attendance_csv", "_selected_action": [room.pk]}
        )
        assert response.status_code == 200, response.content[:500]
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert AuditEntry.objects.filter(action="admin.attendance_csv", target=room.live_id).exists()
        return response.content.decode("utf-8")

    return await download()


def test_cells_that_start_a_formula_are_defused() -> None:
    for text in ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\t=1"]:
        assert csv_cell(text) == "'" + text
    assert csv_cell("alice") == "alice" and csv_cell("Иван 李") == "Иван 李"


def test_published_kinds_come_from_the_stream_records_codecs() -> None:
    assert stream_published_kinds("camera", "VP8+opus") == {"camera", "audio"}
    assert stream_published_kinds("camera", "opus") == {"audio"}
    assert stream_published_kinds("screen", "H264") == {"screen"}
    assert stream_published_kinds("camera", "") == {"camera"}


def test_a_date_range_clips_sessions_and_names_every_room(admin_client: Client) -> None:
    day = datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC)
    hour = datetime.timedelta(hours=1)
    late = Room.objects.create(name="late", live_id="live-late", status=Room.Status.FINALIZED)
    Room.objects.filter(pk=late.pk).update(finalized_at=day + 26 * hour)
    early = Room.objects.create(name="=early", live_id="live-early", status=Room.Status.FINALIZED)
    Participant.objects.create(room=late, login="Иван", session="s1", joined_at=day + 23 * hour,
                               left_at=day + 25 * hour)
    carol = Participant.objects.create(room=late, login="carol", session="s2", joined_at=day + 20 * hour)
    Stream.objects.create(participant=carol, live_id="st1", kind="screen", codec="VP8", started_at=day + 21 * hour)
    Participant.objects.create(room=early, login="dave", session="s3", joined_at=day + hour,
                               left_at=day + 2 * hour)
    Participant.objects.create(room=early, login="erin", session="s4", joined_at=day - 5 * hour,
                               left_at=day - 4 * hour)  # the day before: not in the range
    response = admin_client.get("/admin/rooms/room/attendance/", {"first_day": "2026-11-30",
                                                                  "last_day": "2026-11-30"})
    assert response.status_code == 200
    rows = csv_rows(response.content.decode("utf-8"))
    assert [(row["room"], row["identity"], row["minutes"], row["published"]) for row in rows] == [
        ("late", "carol", "240.0", "screen"),  # still in when the room ended at 02:00 next day: clipped at 24:00
        ("late", "Иван", "60.0", ""),
        ("'=early", "dave", "60.0", ""),
    ]
    assert admin_client.get("/admin/rooms/room/attendance/").status_code == 200  # the form
    assert len(attendance_between(day, day + 24 * hour)) == 2
    assert rooms_attendance([early])[0].rows[0].identity == "erin"
    assert attendance_csv([]) == BOM + ",".join(HEADER) + "\r\n"
