"""CHAT_RETENTION_DAYS: exactly the messages past it go, in batches, each
named in the audit trail; and Celery beat runs it hourly."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from audit.models import AuditEntry
from conference_site.celery import app as celery_app
from rooms import retention
from rooms import tasks as rooms_tasks
from rooms.models import ChatMessage, Room

pytestmark = pytest.mark.django_db

DAY_MS = 86_400_000


def message(room: Room, public_id: str, *, age_ms: int, now_ms: int, to: list[str] | None = None) -> ChatMessage:
    return ChatMessage.objects.create(
        room=room, public_id=public_id, sender="alice", recipients=to, text=f"text of {public_id}",
        sent_at_ms=now_ms - age_ms,
    )


def test_zero_days_keep_every_message(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHAT_RETENTION_DAYS = 0
    room = Room.objects.create(name="old", live_id="live-old", status=Room.Status.FINALIZED)
    now = timezone.now()
    message(room, "ancient", age_ms=3650 * DAY_MS, now_ms=int(now.timestamp() * 1000))
    assert retention.chat_expired_delete(now=now) == 0
    assert ChatMessage.objects.count() == 1 and not AuditEntry.objects.exists()


def test_exactly_the_due_messages_go_in_batches_each_audited(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings.CHAT_RETENTION_DAYS = 30
    monkeypatch.setattr(retention, "BATCH", 3)  # several batches from a handful of rows
    now = timezone.now()
    now_ms = int(now.timestamp() * 1000)
    weekly = Room.objects.create(name="weekly", live_id="live-weekly", status=Room.Status.FINALIZED)
    # A room still live keeps its recent chat only, too.
    standup = Room.objects.create(name="standup", live_id="live-standup", status=Room.Status.ACTIVE)
    due = {
        message(weekly, "w-old-1", age_ms=31 * DAY_MS, now_ms=now_ms).public_id,
        message(weekly, "w-old-2", age_ms=400 * DAY_MS, now_ms=now_ms, to=["bob"]).public_id,
        message(weekly, "w-edge", age_ms=30 * DAY_MS + 1, now_ms=now_ms).public_id,
        message(standup, "s-old", age_ms=45 * DAY_MS, now_ms=now_ms).public_id,
        message(weekly, "w-old-3", age_ms=90 * DAY_MS, now_ms=now_ms).public_id,
    }
    kept = {
        message(weekly, "w-new", age_ms=29 * DAY_MS, now_ms=now_ms).public_id,
        message(weekly, "w-at-limit", age_ms=30 * DAY_MS, now_ms=now_ms).public_id,
        message(standup, "s-new", age_ms=1000, now_ms=now_ms).public_id,
    }

    assert retention.chat_expired_delete(now=now) == len(due)
    assert set(ChatMessage.objects.values_list("public_id", flat=True)) == kept
    assert Room.objects.count() == 2  # rooms stay; only their chat goes
    entries = list(AuditEntry.objects.order_by("pk"))
    assert {(entry.actor, entry.action) for entry in entries} == {("retention", "chat.delete")}
    named = [public_id for entry in entries for public_id in entry.detail["messages"]]
    assert sorted(named) == sorted(due)  # each deleted message named once, nothing else
    assert all(entry.detail["retention_days"] == 30 for entry in entries)
    rooms_of = {(entry.room, entry.target) for entry in entries}
    assert rooms_of == {("weekly", "live-weekly"), ("standup", "live-standup")}
    for entry in entries:  # an entry names only its own room's messages
        assert all(public_id[0] == entry.room[0] for public_id in entry.detail["messages"])
    assert len(entries) >= 2 and max(len(entry.detail["messages"]) for entry in entries) <= 3
    assert retention.chat_expired_delete(now=now) == 0  # a repeat finds nothing
    assert AuditEntry.objects.count() == len(entries)


def test_the_task_runs_the_service_and_beat_sends_it_hourly(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHAT_RETENTION_DAYS = 1
    room = Room.objects.create(name="r", live_id="live-r", status=Room.Status.FINALIZED)
    now_ms = int(timezone.now().timestamp() * 1000)
    message(room, "old", age_ms=2 * DAY_MS, now_ms=now_ms)
    message(room, "new", age_ms=DAY_MS // 2, now_ms=now_ms)
    assert rooms_tasks.chat_retention() == 1
    assert list(ChatMessage.objects.values_list("public_id", flat=True)) == ["new"]
    entries = {entry["task"]: entry for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert entries["rooms.tasks.chat_retention"]["schedule"] == 3600
    assert rooms_tasks.chat_retention.name == "rooms.tasks.chat_retention"
    assert rooms_tasks.chat_retention.name in celery_app.tasks
