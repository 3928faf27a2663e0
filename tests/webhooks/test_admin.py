"""The delivery log in the admin: listed, filtered, read-only, resent by those allowed to."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry
from webhooks import tasks
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/webhooks/webhookdelivery/"


def delivery(webhook_id: str, **fields: object) -> WebhookDelivery:
    defaults: dict[str, object] = {
        "url": "http://127.0.0.1:9/hook", "event": "participant_joined", "room": "weekly", "room_key": "live-1",
        "payload": '{"type":"participant_joined"}', "give_up_at": timezone.now() + datetime.timedelta(hours=24),
    }
    return WebhookDelivery.objects.create(webhook_id=webhook_id, **{**defaults, **fields})


@pytest.fixture
def drains(settings, monkeypatch) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_URLS = ["http://127.0.0.1:9/hook"]
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(tasks.webhook_queue_drain, "delay", lambda url, room_key: asked.append((url, room_key)))
    return asked


def test_the_log_lists_and_filters(admin_client: Client) -> None:
    delivery("msg_ok", status="delivered", attempts=1, last_status_code=204)
    delivery("msg_bad", room="retro", event="room_finished", status="failed", attempts=17, last_status_code=503,
             last_error="HTTP 503 Service Unavailable: maintenance until noon")
    html = admin_client.get(CHANGELIST).content.decode()
    assert "HTTP 503 Service Unavailable: maintenance until noon" in html and "retro" in html
    failed = admin_client.get(CHANGELIST, {"status__exact": "failed"}).content.decode()
    assert "1 result" in failed and "maintenance" in failed
    by_event = admin_client.get(CHANGELIST, {"event__exact": "participant_joined"}).content.decode()
    assert "1 result" in by_event and "maintenance" not in by_event
    assert "1 result" in admin_client.get(CHANGELIST, {"q": "msg_bad"}).content.decode()


def test_a_delivery_is_read_not_edited(admin_client: Client) -> None:
    row = delivery("msg_1", payload='{"type":"participant_joined","data":{"room":"weekly"}}')
    response = admin_client.get(f"{CHANGELIST}{row.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "msg_1" in html and "&quot;room&quot;:&quot;weekly&quot;" in html
    assert 'name="_save"' not in html
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.get(f"{CHANGELIST}{row.pk}/delete/").status_code == 403


def test_resend_requeues_drains_and_is_audited(  # type: ignore[no-untyped-def]
    admin_client: Client, drains: list[tuple[str, str]], django_capture_on_commit_callbacks
) -> None:
    failed = delivery("msg_gave_up", status="failed", attempts=17,
                      give_up_at=timezone.now() - datetime.timedelta(hours=1))
    untouched = delivery("msg_other", room="retro", room_key="live-2", status="delivered")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            CHANGELIST, {"action": "resend", "_selected_action": [failed.pk]}, follow=True, REMOTE_ADDR="10.1.2.3"
        )
    assert "1 delivery queued again (same webhook-id)." in response.content.decode()
    failed.refresh_from_db()
    assert failed.status == "pending" and failed.webhook_id == "msg_gave_up" and failed.attempts == 17
    assert failed.next_attempt_at <= timezone.now() < failed.give_up_at
    untouched.refresh_from_db()
    assert untouched.status == "delivered"
    assert drains == [("http://127.0.0.1:9/hook", "live-1")]
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.room, entry.target, entry.address) == (
        "user:admin", "webhook.resend", "weekly", "msg_gave_up", "10.1.2.3"
    )
    assert entry.detail == {"url": "http://127.0.0.1:9/hook", "event": "participant_joined", "status_before": "failed"}


def test_resend_needs_its_permission(client: Client, drains: list[tuple[str, str]]) -> None:
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    client.force_login(viewer)
    failed = delivery("msg_gave_up", status="failed")
    html = client.get(CHANGELIST).content.decode()
    assert f"{CHANGELIST}{failed.pk}/change/" in html  # the list shows the row...
    assert 'value="resend"' not in html  # ...but offers no resend
    client.post(CHANGELIST, {"action": "resend", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.status == "failed" and drains == [] and not AuditEntry.objects.exists()

    viewer.user_permissions.add(Permission.objects.get(codename="resend_webhookdelivery"))
    viewer = User.objects.get(pk=viewer.pk)  # permissions are cached per user object
    client.force_login(viewer)
    assert 'value="resend"' in client.get(CHANGELIST).content.decode()
    client.post(CHANGELIST, {"action": "resend", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.status == "pending" and AuditEntry.objects.get().actor == "user:viewer"
