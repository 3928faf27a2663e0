"""A room's audio stems as a job: asked for from the records pages, made by
a Celery task (``recording.tasks.room_stems_make``), deleted by retention.

The row moves PENDING → MAKING → READY | FAILED. Asking again for stems
that failed, or whose worker went silent for RECORDING_STALE_AFTER_S, puts
them back to PENDING; asking for ready or running ones changes nothing. The
task claims the row with its id, so a duplicate message finds it taken and
a redelivered one takes it back, as the mix does.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from ops.logs import log_context_bind
from recording.models import RoomStems
from recording.services import (
    PLAYABLE_STATUSES,
    RETENTION_ACTOR,
    recording_file_path,
    recordings_root,
    room_directory,
    room_stream_records,
)
from recording.stale import stale_after
from rooms.models import Room

logger = logging.getLogger(__name__)


def room_stems_sources(room: Room) -> list[Path]:
    """The sidecars of the room's stream records whose files may be read (whole or PARTIAL)."""
    found = []
    for record in room_stream_records(room):
        path = recording_file_path(record.sidecar_path) if record.status in PLAYABLE_STATUSES else None
        if path is not None:
            found.append(path)
    return found


def room_stems_request(*, room: Room, by: str, address: str | None = None) -> tuple[RoomStems, bool]:
    """Ask for the room's stems; the row, and whether a task must be queued
    for it (the caller queues it once the transaction commits)."""
    now = timezone.now()
    with transaction.atomic():
        stems, created = RoomStems.objects.select_for_update().get_or_create(
            room=room, defaults={"requested_by": by, "requested_at": now, "status_changed_at": now}
        )
        if not created:
            ready = stems.status == RoomStems.Status.READY and recording_file_path(stems.file_path) is not None
            running = stems.status in (RoomStems.Status.PENDING, RoomStems.Status.MAKING)
            if ready or (running and stems.status_changed_at >= now - stale_after()):
                return stems, False
            RoomStems.objects.filter(pk=stems.pk).update(
                status=RoomStems.Status.PENDING, task_id="", progress=0, failure_reason="", requested_by=by,
                requested_at=now, status_changed_at=now,
            )
            stems.refresh_from_db()
        audit_record(actor=by, action="stems.request", room=room.name, target=room.live_id, address=address)
    return stems, True


def _stems_claim(stems_id: int, claim: str) -> bool:
    now = timezone.now()
    claimable = (
        Q(status=RoomStems.Status.PENDING)
        | Q(status=RoomStems.Status.MAKING, task_id=claim)
        | Q(status=RoomStems.Status.MAKING, status_changed_at__lt=now - stale_after())
    )
    return bool(
        RoomStems.objects.filter(claimable, pk=stems_id).update(
            status=RoomStems.Status.MAKING, task_id=claim, progress=0, failure_reason="", status_changed_at=now
        )
    )


def _stems_failed(stems_id: int, reason: str) -> None:
    RoomStems.objects.filter(pk=stems_id).update(
        status=RoomStems.Status.FAILED, failure_reason=reason, status_changed_at=timezone.now()
    )


def room_stems_run(stems_id: int, *, claim: str = "") -> None:
    """Make the room's stems ZIP if they are due; safe to repeat."""
    stems = RoomStems.objects.select_related("room").get(pk=stems_id)
    room = stems.room
    log_context_bind(room=room.name)
    if not _stems_claim(stems.pk, claim or uuid.uuid4().hex):
        logger.info("the stems of room %s are not due (%s): nothing to do", room.name, stems.status)
        return
    sidecars = room_stems_sources(room)
    if not sidecars:
        _stems_failed(stems.pk, "no stream of the room was recorded")
        return
    from recording import stems as rendering  # numpy and the codecs load in workers only

    target = room_directory(room.name) / f"stems-{room.live_id}.zip"
    started = time.monotonic()

    def progress(percent: int) -> None:
        # Also the worker's sign of life: a silent MAKING row goes stale.
        RoomStems.objects.filter(pk=stems.pk, status=RoomStems.Status.MAKING).update(
            progress=percent, status_changed_at=timezone.now()
        )

    try:
        result = rendering.room_stems_render(sidecars, target, progress=progress)
    except Exception as error:
        logger.exception("the stems of room %s failed", room.name)
        _stems_failed(stems.pk, f"making the stems failed: {error}")
        return
    logger.info("made %d stems of %.1f s in %.1f s", len(result.stems), result.duration_ms / 1000,
                time.monotonic() - started)
    RoomStems.objects.filter(pk=stems.pk).update(
        status=RoomStems.Status.READY, progress=100, file_path=str(target.relative_to(recordings_root())),
        size_bytes=target.stat().st_size, duration_ms=result.duration_ms, status_changed_at=timezone.now(),
        stems=[
            {"participant": stem.participant, "file": stem.file_name, "records": stem.records}
            for stem in result.stems
        ],
    )


def stems_expired_delete(*, now: datetime) -> int:
    """Delete the stems asked for more than RECORDINGS_RETENTION_DAYS before
    ``now`` (they are records too), file and row, each in the audit trail."""
    days: int = settings.RECORDINGS_RETENTION_DAYS
    if days <= 0:
        return 0
    expired = (
        RoomStems.objects.filter(requested_at__lt=now - timedelta(days=days))
        .exclude(status__in=(RoomStems.Status.PENDING, RoomStems.Status.MAKING))
        .select_related("room")
        .order_by("pk")
    )
    deleted = 0
    for stems in expired.iterator(chunk_size=200):
        path = recording_file_path(stems.file_path) if stems.file_path else None
        if path is not None:
            path.unlink(missing_ok=True)
        with transaction.atomic():
            RoomStems.objects.filter(pk=stems.pk).delete()
            audit_record(
                actor=RETENTION_ACTOR, action="stems.delete", room=stems.room.name, target=stems.room.live_id,
                detail={"files": [stems.file_path] if stems.file_path else [], "retention_days": days},
            )
        deleted += 1
    return deleted


def rooms_with_kept_stems(room_ids: list[int]) -> set[int]:
    """Rooms among ``room_ids`` whose stems file is still kept."""
    return set(RoomStems.objects.filter(room_id__in=room_ids).exclude(file_path="").values_list("room_id", flat=True))
