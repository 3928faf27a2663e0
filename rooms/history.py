"""Durable history of rooms: the database side of every room action.

Synchronous functions, each one transaction, called by ``rooms.services``
through ``rooms.database.db_call``. The live state has already decided the
outcome (who joined, who left, which room ends); these only record it, and
are safe to repeat.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils import timezone

from audit.services import audit_record
from rooms.chat_search import SEARCH_CONFIG, chat_search_enabled, chat_search_text
from rooms.models import ChatMessage, Participant, Room, Stream, StreamMute
from rooms.signals import (
    participant_joined,
    participant_left,
    room_finalized,
    room_started,
    stream_published,
    stream_unpublished,
)

logger = logging.getLogger(__name__)


def _send_on_commit(signal: Signal, sender: type, **arguments: Any) -> None:
    # Robust: a receiver that fails (a broker that is down, say) is logged,
    # keeps no other receiver from running, and never turns an action that
    # was recorded into an error for its caller.
    transaction.on_commit(lambda: signal.send_robust(sender=sender, **arguments))


def _room_for_live_id(*, live_id: str, name: str, record: bool, created: bool) -> Room:
    room = Room.objects.filter(live_id=live_id).first()
    if room is not None:
        return room
    if created:
        # The live state starts this room afresh, so an open row of the same
        # name is left over from state that was lost (a Redis or embedded
        # server restart): close it so the name can open again.
        open_rows = Room.objects.filter(name=name).exclude(status=Room.Status.FINALIZED)
        # Another process may have recorded this very room meanwhile.
        for stale in open_rows.exclude(live_id=live_id):
            room_finalize(live_id=stale.live_id, name=stale.name, record=stale.record)
    try:
        with transaction.atomic():
            room = Room.objects.create(live_id=live_id, name=name, record=record)
            _send_on_commit(room_started, Room, room=room)
            return room
    except IntegrityError:
        # Another process recorded the same live room first.
        return Room.objects.get(live_id=live_id)


def _moment(at_ms: int | None) -> datetime.datetime:
    # Writes may be applied long after the action (the database was away):
    # they carry the time the action happened.
    if at_ms is None:
        return timezone.now()
    return datetime.datetime.fromtimestamp(at_ms / 1000, tz=datetime.UTC)


def participant_record_join(
    *, live_id: str, room_name: str, record: bool, created: bool, reactivated: bool, login: str, session: str,
    joined_seq: int | None = None, at_ms: int | None = None,
) -> None:
    """Record a join; a join recorded already (the same ``joined_seq``) is left as it is."""
    room = _room_for_live_id(live_id=live_id, name=room_name, record=record, created=created)
    with transaction.atomic():
        if reactivated:
            Room.objects.filter(pk=room.pk, status=Room.Status.IDLE).update(
                status=Room.Status.ACTIVE, idle_since=None
            )
        fields = {"login": login, "session": session, "joined_at": _moment(at_ms)}
        if joined_seq is None:
            participant, created_row = Participant.objects.create(room=room, **fields), True
        else:
            participant, created_row = Participant.objects.get_or_create(
                room=room, joined_seq=joined_seq, defaults=fields
            )
        if created_row:
            _send_on_commit(participant_joined, Participant, participant=participant)


def participant_record_leave(
    *, live_id: str, login: str, session: str, reason: str, room_idle: bool, at_ms: int | None = None
) -> None:
    """Close the session's open row in the room; repeated, it finds none open."""
    left_at = _moment(at_ms)
    with transaction.atomic():
        # The room row is locked before the participant rows, in the order
        # room_finalize takes them: the other order deadlocks against a
        # finalization in another process (a drop recorded while the room's
        # last leave finalizes it).
        list(Room.objects.select_for_update(no_key=True).filter(live_id=live_id).values_list("pk", flat=True))
        _participants_leave(
            # Joined before this leave: applied again later, it must not
            # close a row of the same session's next join.
            Participant.objects.filter(room__live_id=live_id, login=login, session=session, joined_at__lte=left_at),
            left_at=left_at, reason=reason,
        )
        if room_idle:
            Room.objects.filter(live_id=live_id, status=Room.Status.ACTIVE).update(
                status=Room.Status.IDLE, idle_since=left_at
            )


def room_finalize(*, live_id: str, name: str, record: bool, at_ms: int | None = None) -> bool:
    """Mark the room FINALIZED; True only for the call that did it.

    The conditional UPDATE makes this exactly-once across processes: of any
    number of concurrent callers one sees a changed row, and only that one
    sends ``room_finalized``.
    """
    now = _moment(at_ms)
    with transaction.atomic():
        room = _room_for_live_id(live_id=live_id, name=name, record=record, created=False)
        changed = (
            Room.objects.filter(pk=room.pk)
            .exclude(status=Room.Status.FINALIZED)
            .update(status=Room.Status.FINALIZED, finalized_at=now)
        )
        if not changed:
            return False
        _participants_leave(Participant.objects.filter(room=room), left_at=now, reason=Participant.LeaveReason.TIMEOUT)
        room.refresh_from_db()
        logger.info("room finalized: %s %s", name, live_id)
        _send_on_commit(room_finalized, Room, room=room)
    return True


def room_finalize_if_deserted(*, live_id: str) -> bool:
    """Finalize the room if nobody is in it any more (its live state was lost)."""
    room = Room.objects.filter(live_id=live_id).exclude(status=Room.Status.FINALIZED).first()
    if room is None or Participant.objects.filter(room=room, left_at__isnull=True).exists():
        return False
    return room_finalize(live_id=room.live_id, name=room.name, record=room.record)


def room_records_links_revoke(*, live_id: str, actor: str, address: str | None = None) -> None:
    """Links to the room's records issued until now stop working (``recording.access`` compares times)."""
    with transaction.atomic():
        room = Room.objects.select_for_update().get(live_id=live_id)
        room.records_links_revoked_at = timezone.now()
        room.save(update_fields=["records_links_revoked_at"])
        audit_record(actor=actor, action="records_link.revoke", room=room.name, target=live_id, address=address)


def _participants_leave(participants: QuerySet[Participant], *, left_at: datetime.datetime, reason: str) -> None:
    """Close the open rows among ``participants``; each one this call closed is news (``participant_left``).

    The conditional UPDATE comes first, so of two racing callers only one
    closes a row (and SQLite sees a write before any read); the rows it
    closed are the ones carrying its own ``left_at``.
    """
    if participants.filter(left_at__isnull=True).update(left_at=left_at, leave_reason=reason):
        for participant in participants.filter(left_at=left_at).select_related("room"):
            _send_on_commit(participant_left, Participant, participant=participant)


def stream_record_start(
    *, live_id: str, session: str, login: str, stream_id: str, kind: str, record: bool, codec: str,
    at_ms: int | None = None,
) -> None:
    participant = (
        Participant.objects.filter(room__live_id=live_id, login=login, session=session).order_by("-joined_at").first()
    )
    if participant is None:
        logger.warning("stream %s started for %s, who is no longer in the room", stream_id, login)
        return
    stream, created = Stream.objects.get_or_create(
        live_id=stream_id,
        defaults={
            "participant": participant, "kind": kind, "record": record, "codec": codec, "started_at": _moment(at_ms)
        },
    )
    if created:
        _send_on_commit(stream_published, Stream, stream=stream)


def stream_record_end(*, stream_id: str, at_ms: int | None = None) -> None:
    now = _moment(at_ms)
    with transaction.atomic():
        if Stream.objects.filter(live_id=stream_id, ended_at__isnull=True).update(ended_at=now):
            stream = Stream.objects.select_related("participant__room").get(live_id=stream_id)
            _send_on_commit(stream_unpublished, Stream, stream=stream)


def stream_record_mute(
    *, stream_id: str, mute_id: str, audio: bool, video: bool, by: str = "", at_ms: int | None = None
) -> None:
    """Record a mute or unmute of a stream; one recorded already (the same ``mute_id``) is left as it is."""
    stream = Stream.objects.filter(live_id=stream_id).first()
    if stream is None:
        logger.warning("stream %s was muted before it was recorded as published; not kept", stream_id)
        return
    StreamMute.objects.get_or_create(
        mute_id=mute_id, defaults={"stream": stream, "audio": audio, "video": video, "by": by, "at": _moment(at_ms)}
    )


def rooms_finalize_orphaned() -> int:
    """Finalize every open room; for a process whose live state starts empty."""
    count = 0
    for room in Room.objects.exclude(status=Room.Status.FINALIZED):
        count += room_finalize(live_id=room.live_id, name=room.name, record=room.record)
    return count


@dataclass(frozen=True)
class ChatRecord:
    """One chat message as the archive stores it (a ChatMessage row of the room ``live_id``)."""

    live_id: str
    public_id: str
    seq: int
    sender: str
    recipients: list[str] | None
    text: str
    sent_at_ms: int


def chat_messages_record(records: Sequence[ChatRecord]) -> None:
    """Store a batch of chat messages in one transaction; a message stored already is skipped."""
    room_ids = dict(
        Room.objects.filter(live_id__in={record.live_id for record in records}).values_list("live_id", "pk")
    )
    for record in records:
        if record.live_id not in room_ids:
            logger.warning("chat message %s of an unrecorded room %s is not archived", record.public_id, record.live_id)
    stored = [record for record in records if record.live_id in room_ids]
    if not stored:
        return
    if chat_search_enabled():
        _chat_rows_insert_indexed(stored, room_ids)
        return
    ChatMessage.objects.bulk_create(
        (
            ChatMessage(
                room_id=room_ids[record.live_id],
                public_id=record.public_id,
                seq=record.seq,
                sender=record.sender,
                recipients=record.recipients,
                text=record.text,
                sent_at_ms=record.sent_at_ms,
            )
            for record in stored
        ),
        ignore_conflicts=True,
    )


def _chat_rows_insert_indexed(records: Sequence[ChatRecord], room_ids: dict[str, int]) -> None:
    """PostgreSQL: the rows with their search documents in one statement.

    Each public message's document is indexed as it is stored, so search
    finds it at once. One INSERT over arrays, not ``bulk_create`` with a
    ``SearchVector`` expression per row: Django resolved and compiled that
    expression row by row, which cost more CPU than the rest of the
    archive write at 500 messages a second.
    """
    table = ChatMessage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (room_id, public_id, seq, sender, recipients, text, sent_at_ms, search_document)"
            " SELECT entry.room_id, entry.public_id, entry.seq, entry.sender, entry.recipients, entry.text,"
            " entry.sent_at_ms,"
            " CASE WHEN entry.recipients IS NULL THEN to_tsvector(%s::regconfig, entry.indexed) END"
            " FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::text[], %s::jsonb[], %s::text[],"
            " %s::bigint[], %s::text[])"
            " AS entry(room_id, public_id, seq, sender, recipients, text, sent_at_ms, indexed)"
            " ON CONFLICT DO NOTHING",
            [
                SEARCH_CONFIG,
                [room_ids[record.live_id] for record in records],
                [record.public_id for record in records],
                [record.seq for record in records],
                [record.sender for record in records],
                [None if record.recipients is None else json.dumps(record.recipients) for record in records],
                [record.text for record in records],
                [record.sent_at_ms for record in records],
                [chat_search_text(record.text) for record in records],
            ],
        )
