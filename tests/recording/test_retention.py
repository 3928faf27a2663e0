"""Retention: ROOM_HISTORY_RETENTION_DAYS and RECORDINGS_RETENTION_DAYS, the
services over rows of various ages (timestamps set by update), and their
Celery beat wiring."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from audit.models import AuditEntry
from conference_site.celery import app as celery_app
from recording import tasks as recording_tasks
from recording.models import Recording
from recording.services import recordings_expired_delete
from rooms import tasks as rooms_tasks
from rooms.models import ChatMessage, Participant, Room, Stream
from rooms.retention import rooms_history_expired_delete

pytestmark = pytest.mark.django_db


def finalized_room(name: str, days_ago: float) -> Room:
    """A room finalized ``days_ago`` with a participant, a stream and a chat message."""
    room = Room.objects.create(name=name, live_id=f"live-{name}", status=Room.Status.FINALIZED)
    Room.objects.filter(pk=room.pk).update(finalized_at=timezone.now() - timedelta(days=days_ago))
    participant = Participant.objects.create(room=room, login="alice", session=f"s-{name}")
    Stream.objects.create(participant=participant, live_id=f"stream-{name}", kind="camera")
    ChatMessage.objects.create(room=room, public_id=f"m-{name}", sender="alice", text="hello", sent_at_ms=0)
    return room


def record_of(room: Room, root: Path, stream: str, days_ago: float, **fields: object) -> Recording:
    (root / room.name).mkdir(exist_ok=True)
    (root / room.name / f"{stream}.webm").write_bytes(b"media")
    (root / room.name / f"{stream}.json").write_bytes(b"{}")
    defaults: dict[str, object] = {
        "status": Recording.Status.READY, "file_path": f"{room.name}/{stream}.webm",
        "sidecar_path": f"{room.name}/{stream}.json", "size_bytes": 5,
    }
    recording = Recording.objects.create(
        room=room, kind=Recording.Kind.STREAM, stream_live_id=stream, **{**defaults, **fields}
    )
    Recording.objects.filter(pk=recording.pk).update(started_at=timezone.now() - timedelta(days=days_ago))
    return recording


def test_zero_days_keep_everything_forever(settings, recordings_root: Path) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_HISTORY_RETENTION_DAYS = settings.RECORDINGS_RETENTION_DAYS = 0
    room = finalized_room("ancient", days_ago=3650)
    record_of(room, recordings_root, "s1", days_ago=3650)
    assert recordings_expired_delete(now=timezone.now()) == 0
    assert rooms_history_expired_delete(now=timezone.now()) == 0
    assert Room.objects.count() == Recording.objects.count() == 1
    assert (recordings_root / "ancient/s1.webm").exists()
    assert not AuditEntry.objects.exists()


def test_expired_records_lose_files_and_rows_and_are_audited(settings, recordings_root: Path) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_RETENTION_DAYS = 30
    room = finalized_room("weekly", days_ago=40)
    old = record_of(room, recordings_root, "old", days_ago=31)
    failed = record_of(room, recordings_root, "failed", days_ago=45, status=Recording.Status.FAILED,
                       file_path="", sidecar_path="", failure_reason="disk quota")
    recent = record_of(room, recordings_root, "recent", days_ago=29)
    mixing = record_of(room, recordings_root, "busy", days_ago=60, status=Recording.Status.MIXING)

    assert recordings_expired_delete(now=timezone.now()) == 2
    assert set(Recording.objects.values_list("pk", flat=True)) == {recent.pk, mixing.pk}
    assert not (recordings_root / "weekly/old.webm").exists() and not (recordings_root / "weekly/old.json").exists()
    assert (recordings_root / "weekly/recent.webm").exists() and (recordings_root / "weekly/busy.webm").exists()
    entries = {entry.target: entry for entry in AuditEntry.objects.all()}
    assert set(entries) == {str(old.pk), str(failed.pk)}
    entry = entries[str(old.pk)]
    assert (entry.actor, entry.action, entry.room) == ("retention", "record.delete", "weekly")
    assert entry.detail == {"files": ["weekly/old.webm", "weekly/old.json"], "row": True, "retention_days": 30}
    assert entries[str(failed.pk)].detail["files"] == []
    assert recordings_expired_delete(now=timezone.now()) == 0  # a repeat finds nothing


def test_expired_rooms_lose_their_history_unless_records_are_kept(settings, recordings_root: Path) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_HISTORY_RETENTION_DAYS = 90
    expired = finalized_room("expired", days_ago=91)
    recent = finalized_room("recent", days_ago=89)
    with_records = finalized_room("taped", days_ago=120)
    record_of(with_records, recordings_root, "kept", days_ago=120)
    files_gone = finalized_room("cleared", days_ago=120)
    record_of(files_gone, recordings_root, "cleared", days_ago=120, file_path="", sidecar_path="")
    live = Room.objects.create(name="live", live_id="live-live", status=Room.Status.ACTIVE)
    Room.objects.filter(pk=live.pk).update(created_at=timezone.now() - timedelta(days=400))

    assert rooms_history_expired_delete(now=timezone.now()) == 2
    assert set(Room.objects.values_list("name", flat=True)) == {"recent", "taped", "live"}
    assert not Participant.objects.filter(room_id__in=[expired.pk, files_gone.pk]).exists()
    assert set(Stream.objects.values_list("live_id", flat=True)) == {"stream-recent", "stream-taped"}
    assert ChatMessage.objects.filter(room=recent).count() == 1 and ChatMessage.objects.count() == 2
    assert Recording.objects.filter(room=with_records).count() == 1
    entries = AuditEntry.objects.order_by("room")
    assert [(entry.actor, entry.action, entry.room, entry.target) for entry in entries] == [
        ("retention", "room.history_delete", "cleared", "live-cleared"),
        ("retention", "room.history_delete", "expired", "live-expired"),
    ]
    assert recent.pk and rooms_history_expired_delete(now=timezone.now()) == 0


def test_records_going_first_let_their_room_go_next(settings, recordings_root: Path) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_HISTORY_RETENTION_DAYS = 7
    settings.RECORDINGS_RETENTION_DAYS = 30
    room = finalized_room("taped", days_ago=31)
    record_of(room, recordings_root, "s1", days_ago=31)
    # As beat runs them: records first, then history.
    assert recording_tasks.recordings_retention() == 1
    assert rooms_tasks.rooms_history_retention() == 1
    assert not Room.objects.exists() and not Recording.objects.exists()
    assert list(AuditEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        "record.delete", "room.history_delete",
    ]


def test_beat_runs_both_retention_tasks_hourly() -> None:
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    entries = {entry["task"]: entry for entry in schedule.values()}
    for task in ("recording.tasks.recordings_retention", "rooms.tasks.rooms_history_retention"):
        assert entries[task]["schedule"] == 3600, entries[task]
        assert task in celery_app.tasks  # the worker knows the name beat sends
    assert recording_tasks.recordings_retention.name == "recording.tasks.recordings_retention"
    assert rooms_tasks.rooms_history_retention.name == "rooms.tasks.rooms_history_retention"
