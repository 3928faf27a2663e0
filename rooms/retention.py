"""History retention: finalized rooms past ROOM_HISTORY_RETENTION_DAYS lose their rows,
and chat messages past CHAT_RETENTION_DAYS are deleted from every room.

A room's participants, streams and chat go with it (their rows cascade).
Rooms another app still needs (recording: records kept longer) stay until
it lets go; each deletion is written to the audit trail.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from audit.services import audit_record
from rooms.models import ChatMessage, Room
from rooms.signals import room_history_expiring

RETENTION_ACTOR = "retention"
# Rooms deleted per transaction: a first run over years of history neither
# holds one long transaction nor loads every row at once.
BATCH = 500


def rooms_history_expired_delete(*, now: datetime) -> int:
    """Delete the rows of rooms finalized more than ROOM_HISTORY_RETENTION_DAYS
    before ``now`` (0 days: keep forever); the number of rooms deleted."""
    days: int = settings.ROOM_HISTORY_RETENTION_DAYS
    if days <= 0:
        return 0
    expired = Room.objects.filter(status=Room.Status.FINALIZED, finalized_at__lt=now - timedelta(days=days))
    deleted = 0
    after = 0  # rooms are walked by id: kept ones are passed over once
    while True:
        batch = list(expired.filter(pk__gt=after).order_by("pk").values_list("pk", "name", "live_id")[:BATCH])
        if not batch:
            return deleted
        after = batch[-1][0]
        room_ids = [pk for pk, _, _ in batch]
        kept: set[int] = set()
        for _, response in room_history_expiring.send_robust(sender=Room, room_ids=room_ids):
            if isinstance(response, Exception):
                kept.update(room_ids)  # (Django logs it) keep what the receiver may need
            elif response:
                kept.update(response)
        with transaction.atomic():
            for pk, name, live_id in batch:
                if pk in kept:
                    continue
                Room.objects.filter(pk=pk).delete()
                audit_record(
                    actor=RETENTION_ACTOR, action="room.history_delete", room=name, target=live_id,
                    detail={"retention_days": days},
                )
                deleted += 1


def chat_expired_delete(*, now: datetime) -> int:
    """Delete the chat messages sent more than CHAT_RETENTION_DAYS before
    ``now`` (0 days: keep forever), in every room, finalized or not; the
    number deleted. Each room's share of a batch is one audit entry naming
    the messages, so the trail says which messages went without one row
    per message."""
    days: int = settings.CHAT_RETENTION_DAYS
    if days <= 0:
        return 0
    before_ms = int((now - timedelta(days=days)).timestamp() * 1000)
    expired = ChatMessage.objects.filter(sent_at_ms__lt=before_ms)
    deleted = 0
    while True:
        batch = list(
            expired.order_by("pk").values_list("pk", "public_id", "room__name", "room__live_id")[:BATCH]
        )
        if not batch:
            return deleted
        by_room: dict[tuple[str, str], list[str]] = {}
        for _, public_id, name, live_id in batch:
            by_room.setdefault((name, live_id), []).append(public_id)
        with transaction.atomic():
            ChatMessage.objects.filter(pk__in=[pk for pk, _, _, _ in batch]).delete()
            for (name, live_id), public_ids in by_room.items():
                audit_record(
                    actor=RETENTION_ACTOR, action="chat.delete", room=name, target=live_id,
                    detail={"messages": public_ids, "retention_days": days},
                )
        deleted += len(batch)
