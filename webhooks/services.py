"""Queueing and delivering webhooks: at least once, with a stable id, in order per room.

Each event becomes one ``WebhookDelivery`` per URL. The deliveries of one
room to one URL form a queue that is drained oldest first: a failed attempt
stops the queue until its retry, so a receiver never gets a room's later
event while an earlier one is still owed. Only the queue's head is ever
claimed, by one worker at a time (a conditional update with a lease), so
any number of drains may be started for a queue: all but one return at
once. Synchronous functions over the database, called by the Celery tasks
and the admin; each is safe to repeat.
"""

from __future__ import annotations

import datetime
import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ops import metrics
from ops.logs import log_context_bind, log_context_scoped
from webhooks.events import WebhookEvent
from webhooks.models import WebhookDelivery
from webhooks.sending import Attempt, webhook_post

logger = logging.getLogger(__name__)

# Retries back off exponentially up to this wait between two attempts.
RETRY_WAIT_MAX_S = 3600.0
# A claim outlives the longest attempt by this much before another worker
# may take the delivery over (its worker died mid-attempt).
CLAIM_MARGIN_S = 30.0


def retry_delay_s(attempts: int) -> float:
    """The wait after the ``attempts``-th failed attempt: the base, then twice as long each time, at most an hour."""
    return float(min(settings.WEBHOOK_RETRY_BASE_S * 2 ** min(attempts - 1, 32), RETRY_WAIT_MAX_S))


def webhook_event_queue(event: WebhookEvent) -> list[str]:
    """Log the event for every URL in WEBHOOK_URLS, due now; returns the URLs whose room queue the caller drains."""
    now = timezone.now()
    webhook_id = f"msg_{uuid.uuid4().hex}"
    payload = event.payload()
    give_up_at = now + datetime.timedelta(seconds=settings.WEBHOOK_RETRY_FOR_S)
    with transaction.atomic():
        WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                webhook_id=webhook_id, url=url, event=event.type, room=event.room.name, room_key=event.room.live_id,
                payload=payload, next_attempt_at=now, give_up_at=give_up_at,
            )
            for url in settings.WEBHOOK_URLS
        )
    return list(settings.WEBHOOK_URLS)


@log_context_scoped
def webhook_queue_drain(*, url: str, room_key: str) -> float | None:
    """Deliver a room's pending deliveries to ``url``, oldest first, until one fails.

    Returns the seconds until the failed one's retry (the caller schedules
    another drain then), or None: the queue is empty, its head is not due
    yet (its retry is scheduled already), or another worker holds it.
    """
    if url not in settings.WEBHOOK_URLS:
        return None  # taken out of the configuration: its deliveries wait in the log
    pending = WebhookDelivery.objects.filter(url=url, room_key=room_key, status=WebhookDelivery.Status.PENDING)
    while (head := pending.order_by("pk").first()) is not None:
        now = timezone.now()
        if head.next_attempt_at > now or not _claim(head, now):
            return None
        log_context_bind(room=head.room)
        attempt = webhook_post(
            url=url, webhook_id=head.webhook_id, payload=head.payload, secret=settings.WEBHOOK_SECRET,
            timeout_s=settings.WEBHOOK_TIMEOUT_S,
        )
        retry_in = _attempt_record(head, attempt)
        if retry_in is not None:
            return retry_in
    return None


def _claim(delivery: WebhookDelivery, now: datetime.datetime) -> bool:
    lease = datetime.timedelta(seconds=settings.WEBHOOK_TIMEOUT_S * 2 + CLAIM_MARGIN_S)
    return bool(
        WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + lease)
    )


def _attempt_record(delivery: WebhookDelivery, attempt: Attempt) -> float | None:
    """Write down an attempt; the seconds until the retry, or None when the queue may go on."""
    now = timezone.now()
    attempts = delivery.attempts + 1
    row = WebhookDelivery.objects.filter(pk=delivery.pk)
    outcome = {"attempts": attempts, "last_status_code": attempt.status_code, "last_error": attempt.error,
               "claimed_until": None}
    if attempt.delivered:
        metrics.WEBHOOK_DELIVERIES.labels("delivered").inc()
        row.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=now, **outcome)
        return None
    wait = retry_delay_s(attempts)
    if now + datetime.timedelta(seconds=wait) > delivery.give_up_at:
        logger.warning(
            "webhook %s (%s of %s) to %s given up after %d attempts: %s",
            delivery.webhook_id, delivery.event, delivery.room, delivery.url, attempts, attempt.error,
        )
        metrics.WEBHOOK_DELIVERIES.labels("given_up").inc()
        row.update(status=WebhookDelivery.Status.FAILED, **outcome)
        return None
    metrics.WEBHOOK_DELIVERIES.labels("retry").inc()
    row.update(next_attempt_at=now + datetime.timedelta(seconds=wait), **outcome)
    return wait


def webhook_queues_due() -> list[tuple[str, str]]:
    """The (url, room key) queues with a delivery due and nobody on it: their retry was lost (Celery beat)."""
    now = timezone.now()
    due = (
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now, url__in=settings.WEBHOOK_URLS
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .values_list("url", "room_key")
        .distinct()
    )
    return list(due)


def webhook_deliveries_resend(deliveries: list[WebhookDelivery]) -> list[tuple[str, str]]:
    """Make deliveries due again, with the same id (operator action); returns the queues the caller drains.

    A resent delivery goes back to its place in its room's queue (by age),
    and is tried for another WEBHOOK_RETRY_FOR_S.
    """
    now = timezone.now()
    WebhookDelivery.objects.filter(pk__in=[delivery.pk for delivery in deliveries]).update(
        status=WebhookDelivery.Status.PENDING, next_attempt_at=now,
        give_up_at=now + datetime.timedelta(seconds=settings.WEBHOOK_RETRY_FOR_S),
    )
    return sorted({(delivery.url, delivery.room_key) for delivery in deliveries})


def webhook_log_prune() -> int:
    """Forget delivered deliveries older than WEBHOOK_LOG_KEEP_DAYS; failed ones stay for the operator."""
    cutoff = timezone.now() - datetime.timedelta(days=settings.WEBHOOK_LOG_KEEP_DAYS)
    deleted, _ = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DELIVERED, created_at__lt=cutoff).delete()
    return deleted
