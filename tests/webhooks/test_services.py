"""Queues of deliveries: oldest first per room and URL, stopped by a failure, retried, given up, resent.

The drains run here in the test's thread against a real receiver; the
Celery side is tested with a real worker in test_delivery.py.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
from collections.abc import Iterator

import pytest
from django.utils import timezone

from rooms.models import Room
from tests.webhooks.receiver import WebhookReceiver
from webhooks import services
from webhooks.events import WebhookEvent
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


class Answers:
    """What the receiver answers each webhook-id: 204 unless told otherwise."""

    def __init__(self) -> None:
        self.failing: set[str] = set()

    def __call__(self, webhook_id: str) -> int:
        return 503 if webhook_id in self.failing else 204


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def receiver(settings, answers: Answers) -> Iterator[WebhookReceiver]:  # type: ignore[no-untyped-def]
    started = WebhookReceiver(SECRET, answer=answers)
    started.up()
    settings.WEBHOOK_URLS = [started.url]
    settings.WEBHOOK_SECRET = SECRET
    settings.WEBHOOK_RETRY_BASE_S = 5.0
    settings.WEBHOOK_RETRY_FOR_S = 24 * 3600
    yield started
    started.close()


def room(name: str) -> Room:
    return Room.objects.create(name=name, live_id=f"live-{name}")


def event(of: Room, number: int) -> str:
    """Queue one event; returns its webhook-id."""
    services.webhook_event_queue(WebhookEvent("participant_joined", of, timezone.now(), {"n": number}))
    return WebhookDelivery.objects.latest("pk").webhook_id


def received_numbers(receiver: WebhookReceiver) -> list[int]:
    return [json.loads(request.body)["data"]["n"] for request in receiver.received]


def make_due(webhook_id: str) -> None:
    WebhookDelivery.objects.filter(webhook_id=webhook_id).update(next_attempt_at=timezone.now())


def test_a_queue_goes_oldest_first_and_stops_at_a_failure(receiver: WebhookReceiver, answers: Answers) -> None:
    weekly = room("weekly")
    first, second, third = (event(weekly, number) for number in (1, 2, 3))
    answers.failing.add(second)

    before = timezone.now()
    assert services.webhook_queue_drain(url=receiver.url, room_key=weekly.live_id) == 5.0
    assert received_numbers(receiver) == [1, 2]
    rows = {row.webhook_id: row for row in WebhookDelivery.objects.all()}
    assert rows[first].status == "delivered" and rows[first].attempts == 1 and rows[first].delivered_at is not None
    failed = rows[second]
    assert (failed.status, failed.attempts, failed.last_status_code) == ("pending", 1, 503)
    assert failed.last_error.startswith("HTTP 503") and failed.claimed_until is None
    assert before + datetime.timedelta(seconds=5) <= failed.next_attempt_at <= timezone.now() + datetime.timedelta(
        seconds=5
    )
    assert rows[third].attempts == 0  # the later event waits behind the failed one

    # Not due yet: a drain started meanwhile (a new event, the sweep) sends nothing.
    answers.failing.clear()
    assert services.webhook_queue_drain(url=receiver.url, room_key=weekly.live_id) is None
    assert received_numbers(receiver) == [1, 2]

    make_due(second)
    assert services.webhook_queue_drain(url=receiver.url, room_key=weekly.live_id) is None
    assert received_numbers(receiver) == [1, 2, 2, 3]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert WebhookDelivery.objects.get(webhook_id=second).attempts == 2
    assert [request.webhook_id for request in receiver.received] == [first, second, second, third]


def test_another_room_does_not_wait_for_a_failing_one(receiver: WebhookReceiver, answers: Answers) -> None:
    stuck, free = room("stuck"), room("free")
    answers.failing.add(event(stuck, 1))
    event(free, 2)
    assert services.webhook_queue_drain(url=receiver.url, room_key=stuck.live_id) == 5.0
    assert services.webhook_queue_drain(url=receiver.url, room_key=free.live_id) is None
    assert received_numbers(receiver) == [1, 2]
    assert dict(WebhookDelivery.objects.values_list("room", "status")) == {"stuck": "pending", "free": "delivered"}


def test_each_url_has_its_own_queue_and_the_same_webhook_id(settings, receiver: WebhookReceiver) -> None:  # type: ignore[no-untyped-def]
    down = WebhookReceiver(SECRET)
    settings.WEBHOOK_URLS = [receiver.url, down.url]
    try:
        weekly = room("weekly")
        webhook_id = event(weekly, 1)
        assert services.webhook_queue_drain(url=down.url, room_key=weekly.live_id) == 5.0
        assert services.webhook_queue_drain(url=receiver.url, room_key=weekly.live_id) is None
    finally:
        down.close()
    rows = dict(WebhookDelivery.objects.filter(webhook_id=webhook_id).values_list("url", "status"))
    assert rows == {receiver.url: "delivered", down.url: "pending"}
    assert WebhookDelivery.objects.get(url=down.url).last_error.startswith("ConnectionRefused")


def test_retries_back_off_exponentially_up_to_an_hour(settings) -> None:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_RETRY_BASE_S = 5.0
    assert [services.retry_delay_s(attempts) for attempts in range(1, 13)] == [
        5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600,
    ]
    assert services.retry_delay_s(400) == 3600


def test_a_delivery_past_its_window_is_given_up_and_the_queue_goes_on(
    receiver: WebhookReceiver, answers: Answers
) -> None:
    weekly = room("weekly")
    doomed, after = event(weekly, 1), event(weekly, 2)
    answers.failing.add(doomed)
    # Its 24 hours are nearly over: the next retry would come after them.
    WebhookDelivery.objects.filter(webhook_id=doomed).update(give_up_at=timezone.now() + datetime.timedelta(seconds=3))
    assert services.webhook_queue_drain(url=receiver.url, room_key=weekly.live_id) is None
    assert dict(WebhookDelivery.objects.values_list("webhook_id", "status")) == {doomed: "failed", after: "delivered"}
    assert received_numbers(receiver) == [1, 2]


def test_the_head_of_a_queue_is_claimed_by_one_drain_at_a_time(receiver: WebhookReceiver) -> None:
    weekly = room("weekly")
    head = event(weekly, 1)
    event(weekly, 2)
    held = WebhookDelivery.objects.filter(webhook_id=head)
    held.update(claimed_until=timezone.now() + datetime.timedelta(seconds=60))
    assert services.webhook_queue_drain(url=receiver.url, room_key=weekly.live_id) is None
    assert receiver.received == []  # not even the second: that would overtake the first
    # The holder died: its claim runs out and the queue is taken over.
    held.update(claimed_until=timezone.now() - datetime.timedelta(seconds=1))
    assert services.webhook_queue_drain(url=receiver.url, room_key=weekly.live_id) is None
    assert received_numbers(receiver) == [1, 2]


def test_the_sweep_finds_queues_whose_retry_was_lost(settings, receiver: WebhookReceiver) -> None:  # type: ignore[no-untyped-def]
    due, later, held, dropped = room("due"), room("later"), room("held"), room("dropped")
    for each in (due, later, held, dropped):
        event(each, 1)
    soon = timezone.now() + datetime.timedelta(seconds=60)
    WebhookDelivery.objects.filter(room="later").update(next_attempt_at=soon)
    WebhookDelivery.objects.filter(room="held").update(claimed_until=soon)
    WebhookDelivery.objects.filter(room="dropped").update(url="http://127.0.0.1:9/no-longer-configured")
    assert services.webhook_queues_due() == [(receiver.url, due.live_id)]
    # A URL taken out of WEBHOOK_URLS is not posted to by a drain either.
    assert services.webhook_queue_drain(url="http://127.0.0.1:9/no-longer-configured", room_key=dropped.live_id) is None
    assert WebhookDelivery.objects.get(room="dropped").attempts == 0


def test_a_resent_delivery_keeps_its_id_and_its_place(receiver: WebhookReceiver) -> None:
    weekly = room("weekly")
    first = event(weekly, 1)
    assert services.webhook_queue_drain(url=receiver.url, room_key=weekly.live_id) is None
    event(weekly, 2)
    WebhookDelivery.objects.filter(webhook_id=first).update(status="failed")
    delivery = WebhookDelivery.objects.get(webhook_id=first)
    queues = services.webhook_deliveries_resend([delivery])
    assert queues == [(receiver.url, weekly.live_id)]
    resent = WebhookDelivery.objects.get(webhook_id=first)
    assert resent.status == "pending" and resent.give_up_at > timezone.now() + datetime.timedelta(hours=23)
    assert services.webhook_queue_drain(url=receiver.url, room_key=weekly.live_id) is None
    # The resent one goes first again: it is the older event of the room.
    assert received_numbers(receiver) == [1, 1, 2]
    assert [request.webhook_id for request in receiver.received][:2] == [first, first]


def test_old_delivered_deliveries_are_forgotten_failed_ones_kept(settings, receiver: WebhookReceiver) -> None:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_LOG_KEEP_DAYS = 30
    weekly = room("weekly")
    for number in range(4):
        event(weekly, number)
    rows = list(WebhookDelivery.objects.order_by("pk"))
    old = timezone.now() - datetime.timedelta(days=31)
    WebhookDelivery.objects.filter(pk__in=[rows[0].pk, rows[1].pk, rows[2].pk]).update(created_at=old)
    WebhookDelivery.objects.filter(pk__in=[rows[0].pk, rows[3].pk]).update(status="delivered")
    WebhookDelivery.objects.filter(pk=rows[1].pk).update(status="failed")
    assert services.webhook_log_prune() == 1
    assert list(WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True)) == [
        rows[1].pk, rows[2].pk, rows[3].pk,
    ]
