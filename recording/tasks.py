"""Celery tasks of recording: thin wrappers over ``recording.services``.

Both are acknowledged late and given back to the queue when the worker
running them dies, so a crash mid-mix means another run, never a lost
mix; the services make every run safe to repeat.
"""

from celery import shared_task

from recording import services

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


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def room_mix(recording_id: int) -> None:
    """Mix a room's stream records into one file, then run the hook."""
    services.room_mix_run(recording_id)
