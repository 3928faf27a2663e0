"""Celery tasks of recording: thin wrappers over ``recording.services``.

Both are acknowledged late and given back to the queue when the worker
running them dies, so a crash mid-mix means another run, never a lost
mix; the services make every run safe to repeat.
"""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from recording import services, stems_services

# A finalized room's stream records are closed by their media node within
# moments; a node that died is given this long before its records are
# called PARTIAL.
SETTLE_RETRIES = 60
SETTLE_RETRY_S = 1


@shared_task(bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True, max_retries=SETTLE_RETRIES)
def room_recordings_finish(self, room_id: int) -> None:  # type: ignore[no-untyped-def]
    """After a room is finalized: settle its stream records, pad them, queue the mix."""
    give_up_waiting = self.request.retries >= SETTLE_RETRIES
    finished = services.room_recordings_finish(room_id, give_up_waiting=give_up_waiting)
    if not finished.settled:
        raise self.retry(countdown=SETTLE_RETRY_S)
    if finished.mix_due is not None:
        room_mix.delay(finished.mix_due)


@shared_task(bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def room_mix(self, recording_id: int) -> None:  # type: ignore[no-untyped-def]
    """Mix a room's stream records into one file, then run the hook.

    The task's id claims the mix: a duplicate (queued again by the sweep)
    finds it taken or done; this very message, given back after its worker
    died, takes it back.
    """
    services.room_mix_run(recording_id, claim=self.request.id or "")


@shared_task(ignore_result=True)
def recordings_sweep() -> None:
    """Queue again the work of stale recordings (Celery beat).

    The first messages carry no expiry: work that must not be lost waits in
    the queue for a worker, however long. These copies expire at the next
    sweep, which sends fresh ones; so a worker coming back after an outage
    discards the expired copies unrun, and the claim in ``room_mix_run``
    makes sure the copies that remain mix a room once.
    """
    due = services.recordings_stale_due()
    expires = settings.RECORDING_SWEEP_INTERVAL_S
    for room_id in due.rooms_to_finish:
        room_recordings_finish.apply_async((room_id,), expires=expires)
    for recording_id in due.mixes:
        room_mix.apply_async((recording_id,), expires=expires)


@shared_task(ignore_result=True)
def recordings_retention() -> int:
    """Delete records, and audio stems, past RECORDINGS_RETENTION_DAYS (Celery beat)."""
    now = timezone.now()
    return services.recordings_expired_delete(now=now) + stems_services.stems_expired_delete(now=now)


@shared_task(bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def room_stems_make(self, stems_id: int) -> None:  # type: ignore[no-untyped-def]
    """Make a room's per-participant audio stems (a ZIP of FLAC files).

    The task's id claims the job, as ``room_mix``'s does.
    """
    stems_services.room_stems_run(stems_id, claim=self.request.id or "")
