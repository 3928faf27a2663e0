"""Celery tasks of webhooks: thin wrappers over ``webhooks.services``.

A drain is acknowledged late and given back to the queue when its worker
dies; the claims in the services make a repeated or doubled drain harmless.
"""

from celery import shared_task

from webhooks import services


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def webhook_queue_drain(url: str, room_key: str) -> None:
    """Deliver a room's pending webhooks to one URL in order; schedule the retry of one that failed."""
    retry_in = services.webhook_queue_drain(url=url, room_key=room_key)
    if retry_in is not None:
        webhook_queue_drain.apply_async((url, room_key), countdown=retry_in)


def webhook_queues_drain(queues: list[tuple[str, str]]) -> None:
    """Start a drain of each (url, room key) queue."""
    for url, room_key in queues:
        webhook_queue_drain.delay(url, room_key)


@shared_task(ignore_result=True)
def webhooks_sweep() -> None:
    """Celery beat: drain queues whose retry was lost; forget old delivered deliveries."""
    webhook_queues_drain(services.webhook_queues_due())
    services.webhook_log_prune()
