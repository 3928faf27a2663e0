"""The records page: what a row shows, pagination, refreshing. Who sees what: test_records_links.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recording.models import Recording
from recording.templatetags.recording_format import duration_ms
from rooms.models import Participant, Room
from tests.recording.records_access import operator_client, visitor_with_link

pytestmark = pytest.mark.django_db


@pytest.fixture
def recordings_root(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_ROOT = tmp_path
    return tmp_path


def finished_room(name: str, *logins: str) -> Room:
    room = Room.objects.create(name=name, live_id=f"live-{name}", status=Room.Status.FINALIZED)
    for login in logins:
        Participant.objects.create(room=room, login=login, session=f"s-{login}")
    return room


def recording_of(room: Room, root: Path, *, status: str = Recording.Status.READY, **fields: object) -> Recording:
    """The room's mix; with ``participant=`` one of its stream records (a room has one mix, many streams)."""
    kind = Recording.Kind.STREAM if "participant" in fields else Recording.Kind.ROOM
    if kind == Recording.Kind.STREAM:
        fields.setdefault("stream_live_id", f"stream-{Recording.objects.count()}")
    recording = Recording.objects.create(room=room, kind=kind, status=status, **fields)
    if status in (Recording.Status.READY, Recording.Status.PARTIAL) and "file_path" not in fields:
        name = f"{room.name}-{recording.pk}.webm"
        (root / name).write_bytes(b"\x1aE\xdf\xa3 webm")
        recording.file_path = name
        recording.save()
    return recording


def rows(html: str) -> dict[int, str]:
    """Each table row's text by recording id."""
    return {
        int(pk): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
        for pk, row in re.findall(r'<tr id="recording-(\d+)">(.*?)</tr>', html, re.S)
    }


def test_operators_see_every_room_newest_first(recordings_root: Path) -> None:
    older = recording_of(finished_room("weekly", "alice", "bob", "alice"), recordings_root)
    newer = recording_of(finished_room("retro", "carol"), recordings_root, status=Recording.Status.MIXING, progress=40)
    response = operator_client().get("/records/")
    assert response.status_code == 200
    html = response.content.decode()
    shown = rows(html)
    assert list(shown) == [newer.pk, older.pk]
    # Each participant once, in order of first join.
    assert shown[older.pk].startswith("weekly alice, bob room mix")
    assert "ready" in shown[older.pk] and "Download" in shown[older.pk]
    assert "mixing 40%" in shown[newer.pk] and "Download" not in shown[newer.pk]
    assert f'href="/records/{older.pk}/download/"' in html
    assert f'src="/records/{older.pk}/download/"' in html
    assert response["Cache-Control"] == "private"


def test_row_figures(recordings_root: Path) -> None:
    recording = recording_of(
        finished_room("weekly", "alice"), recordings_root, duration_ms=3_723_400, size_bytes=5 * 1024 * 1024
    )
    shown = rows(operator_client().get("/records/").content.decode())[recording.pk]
    assert "1:02:03" in shown and "5.0 MB" in shown
    started = recording.started_at.strftime("%Y-%m-%d %H:%M")
    assert f"{started} UTC" in shown


@pytest.mark.parametrize(
    ("milliseconds", "text"), [(None, "—"), (0, "0:00"), (59_600, "1:00"), (61_000, "1:01"), (3_600_000, "1:00:00")]
)
def test_duration_text(milliseconds: int | None, text: str) -> None:
    assert duration_ms(milliseconds) == text


def test_no_download_without_a_finished_file(recordings_root: Path) -> None:
    room = finished_room("weekly", "alice")
    failed = recording_of(room, recordings_root, status=Recording.Status.FAILED, failure_reason="no streams")
    missing = recording_of(room, recordings_root, file_path="gone.webm", participant="alice")
    partial = recording_of(room, recordings_root, status=Recording.Status.PARTIAL, participant="alice")
    shown = rows(operator_client().get("/records/").content.decode())
    assert "Download" not in shown[failed.pk] and "failed" in shown[failed.pk]
    assert "Download" not in shown[missing.pk]
    assert "Download" in shown[partial.pk] and "partial" in shown[partial.pk]


def test_pages_of_a_link_carry_no_token(recordings_root: Path) -> None:
    room = finished_room("weekly", "alice")
    created = [
        recording_of(room, recordings_root, status=Recording.Status.FAILED, participant="alice") for _ in range(27)
    ]
    visitor = visitor_with_link(room.live_id)
    first = visitor.get("/records/").content.decode()
    assert len(rows(first)) == 25
    next_link = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_link is not None
    assert next_link.group(1) == "?page=2"
    second = visitor.get(f"/records/{next_link.group(1)}")
    assert list(rows(second.content.decode())) == [created[1].pk, created[0].pk]


def test_in_progress_pages_refresh_themselves(recordings_root: Path) -> None:
    room = finished_room("weekly", "alice")
    recording = recording_of(room, recordings_root, status=Recording.Status.PENDING_MIX)
    client = operator_client()
    assert 'data-refresh-seconds="5"' in client.get("/records/").content.decode()
    Recording.objects.filter(pk=recording.pk).update(status=Recording.Status.READY)
    assert "data-refresh-seconds" not in client.get("/records/").content.decode()

