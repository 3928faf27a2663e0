"""Recordings stuck for want of a Celery worker, found from their timestamps.

A finalized room's records are settled and mixed by Celery tasks; with no
worker running (or one that died mid-mix) the row would keep saying
RECORDING, PENDING_MIX or MIXING with nothing to tell an operator that it
never will change. Whether a row is stale is computed here from the time
it entered its status (and its room's finalization), so the admin can say
so while no worker runs at all.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from recording.models import Recording
from rooms.models import Room


def stale_after() -> timedelta:
    return timedelta(seconds=settings.RECORDING_STALE_AFTER_S)


def recordings_stale_q(now: datetime) -> Q:
    """The rows that are stale at ``now``, as a filter."""
    cutoff = now - stale_after()
    return (
        Q(status__in=(Recording.Status.PENDING_MIX, Recording.Status.MIXING), status_changed_at__lt=cutoff)
        | Q(status=Recording.Status.RECORDING, room__status=Room.Status.FINALIZED, room__finalized_at__lt=cutoff)
    )


def duration_text(delta: timedelta) -> str:
    """ "45 s", "10 min", "2 h 5 min": how long a row has been waiting."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def recording_stale_reason(recording: Recording, now: datetime) -> str | None:
    """Why the row is stuck at ``now``, or None while it is not."""
    cutoff = now - stale_after()
    if recording.status == Recording.Status.PENDING_MIX and recording.status_changed_at < cutoff:
        return f"no worker has taken the mix for {duration_text(now - recording.status_changed_at)}"
    if recording.status == Recording.Status.MIXING and recording.status_changed_at < cutoff:
        silence = duration_text(now - recording.status_changed_at)
        return f"the mixing worker has reported nothing for {silence} (it may have died)"
    room = recording.room
    if (
        recording.status == Recording.Status.RECORDING
        and room.status == Room.Status.FINALIZED
        and room.finalized_at is not None
        and room.finalized_at < cutoff
    ):
        ended = duration_text(now - room.finalized_at)
        if recording.kind == Recording.Kind.ROOM:
            return f"the room ended {ended} ago and no worker has taken its records"
        return f"the room ended {ended} ago and its media node never closed this record"
    return None
