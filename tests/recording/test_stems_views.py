"""The stems pages: asking for a room's stems, the job the task runs, the
ZIP download, who may do it, the audit trail, and retention."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry
from recording.models import Recording, RoomStems
from recording.stems_services import room_stems_run, stems_expired_delete
from rooms.models import Room
from rooms.retention import rooms_history_expired_delete
from tests.recording.archived_room import T0, archived_room, joined, published
from tests.recording.records_access import operator_client, visitor_with_link
from tests.recording.synthetic import SyntheticRecord, synthetic_record_write

pytestmark = pytest.mark.django_db


def recorded_room(root: Path, name: str = "weekly", at_ms: int = 100) -> Room:
    """A finalized room with one real stream record of alice's (a beep at 1 s)."""
    room = archived_room(name)
    stream = published(joined(room, "alice", 0, 5_000), at_ms, at_ms + 3_000)
    sidecar = synthetic_record_write(root / room.name, SyntheticRecord(
        stream=stream.live_id, participant="alice", room=room.name, room_id=room.live_id, duration_s=2.0,
        beep_times_s=(1.0,), started_at_ms=float(T0 + at_ms),
    ))
    Recording.objects.create(
        room=room, kind=Recording.Kind.STREAM, stream=stream, stream_live_id=stream.live_id, participant="alice",
        status=Recording.Status.READY, file_path=f"{room.name}/{stream.live_id}.webm",
        sidecar_path=str(sidecar.relative_to(root)), duration_ms=2000,
    )
    return room


def test_a_link_holder_asks_for_the_stems_and_downloads_them(
    recordings_root: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    room = recorded_room(recordings_root)
    page_url, zip_url = f"/records/rooms/{room.live_id}/stems/", f"/records/rooms/{room.live_id}/stems.zip"
    visitor = visitor_with_link(room.live_id, "alice")
    assert 'id="stems-make"' in visitor.get(page_url).content.decode()
    assert visitor.get(zip_url).status_code == 404  # not made yet

    with django_capture_on_commit_callbacks() as queued:
        response = visitor.post(page_url)
    assert response.status_code == 302 and response["Location"] == page_url
    assert len(queued) == 1  # the task goes to the queue once the row is written
    stems = RoomStems.objects.get(room=room)
    assert stems.status == RoomStems.Status.PENDING and stems.requested_by == "alice"
    assert 'id="stems-working"' in visitor.get(page_url).content.decode()
    with django_capture_on_commit_callbacks() as queued_again:
        visitor.post(page_url)
    assert queued_again == []  # already waiting: not queued twice

    room_stems_run(stems.pk, claim="task-1")  # what the task does
    stems.refresh_from_db()
    assert stems.status == RoomStems.Status.READY and stems.progress == 100
    assert stems.stems == [{"participant": "alice", "file": "alice.flac", "records": 1}]
    assert stems.duration_ms == 2000
    room_stems_run(stems.pk, claim="task-2")  # a duplicate message changes nothing
    page = visitor.get(page_url).content.decode()
    assert 'id="stems-download"' in page and "alice.flac" in page

    download = visitor.get(zip_url)
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    body = b"".join(download.streaming_content)  # type: ignore[attr-defined]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.namelist() == ["alice.flac"]
        assert archive.read("alice.flac")[:4] == b"fLaC"
    actions = list(AuditEntry.objects.order_by("pk").values_list("actor", "action", "room", "target"))
    assert actions == [
        ("alice", "stems.request", "weekly", room.live_id), ("alice", "stems.download", "weekly", room.live_id),
    ]
    assert 'id="archive-stems"' in visitor.get(f"/records/rooms/{room.live_id}/").content.decode()


def test_only_those_who_may_see_the_room_reach_its_stems(recordings_root: Path) -> None:
    room = recorded_room(recordings_root)
    other = recorded_room(recordings_root, "other", at_ms=200)
    stems = RoomStems.objects.create(room=room)
    room_stems_run(stems.pk)
    page_url, zip_url = f"/records/rooms/{room.live_id}/stems/", f"/records/rooms/{room.live_id}/stems.zip"
    stranger = visitor_with_link(other.live_id, "bob")
    assert stranger.get(page_url).status_code == 404
    assert stranger.get(zip_url).status_code == 404
    assert stranger.post(page_url).status_code == 404
    anonymous = Client()
    assert anonymous.get(page_url).status_code == 403
    assert anonymous.get(zip_url).status_code == 404
    operator = operator_client()
    assert operator.get(zip_url).status_code == 200
    assert AuditEntry.objects.get(action="stems.download").actor == "user:operator"
    assert not RoomStems.objects.filter(room=other).exists()


def test_retention_deletes_expired_stems_and_keeps_their_room_until_then(settings, recordings_root: Path) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_RETENTION_DAYS = 30
    settings.ROOM_HISTORY_RETENTION_DAYS = 1
    room = recorded_room(recordings_root)
    Recording.objects.filter(room=room).update(file_path="", sidecar_path="")  # its records already went
    Room.objects.filter(pk=room.pk).update(finalized_at=timezone.now() - timedelta(days=40))
    stems = RoomStems.objects.create(room=room)
    room_stems_run(stems.pk)
    stems.refresh_from_db()
    assert stems.status == RoomStems.Status.FAILED  # no readable record left
    stems = RoomStems.objects.get(pk=stems.pk)
    zip_path = recordings_root / "weekly" / "stems-live-weekly.zip"
    zip_path.write_bytes(b"PK")
    RoomStems.objects.filter(pk=stems.pk).update(
        status=RoomStems.Status.READY, file_path="weekly/stems-live-weekly.zip",
        requested_at=timezone.now() - timedelta(days=29),
    )
    assert rooms_history_expired_delete(now=timezone.now()) == 0  # the stems file keeps the room
    assert stems_expired_delete(now=timezone.now()) == 0  # not due yet
    RoomStems.objects.filter(pk=stems.pk).update(requested_at=timezone.now() - timedelta(days=31))
    assert stems_expired_delete(now=timezone.now()) == 1
    assert not zip_path.exists() and not RoomStems.objects.exists()
    entry = AuditEntry.objects.get(action="stems.delete")
    assert (entry.actor, entry.room, entry.detail) == (
        "retention", "weekly", {"files": ["weekly/stems-live-weekly.zip"], "retention_days": 30},
    )
    assert rooms_history_expired_delete(now=timezone.now()) == 1
