"""The webhook delivery log in the admin: read, filtered, resent; never edited."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.admin import ReadOnlyAdmin
from audit.services import audit_record
from webhooks import services, tasks
from webhooks.models import WebhookDelivery


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin, admin.ModelAdmin[WebhookDelivery]):
    list_display = (
        "created_at", "event", "room", "url", "status", "attempts", "last_status_code", "last_error_short",
        "next_attempt_at", "delivered_at",
    )
    list_filter = ("status", "event", "url")
    search_fields = ("webhook_id", "room", "room_key")
    date_hierarchy = "created_at"
    readonly_fields = (
        "webhook_id", "url", "event", "room", "room_key", "payload", "status", "attempts", "last_status_code",
        "last_error", "next_attempt_at", "give_up_at", "claimed_until", "created_at", "delivered_at",
    )
    actions = ["resend"]

    @admin.display(description="last error")
    def last_error_short(self, delivery: WebhookDelivery) -> str:
        return delivery.last_error[:80]

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.resend_webhookdelivery")

    @admin.action(description="Resend the selected deliveries (same webhook-id)", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        deliveries = list(queryset)
        actor = f"user:{request.user.get_username()}"
        with transaction.atomic():
            queues = services.webhook_deliveries_resend(deliveries)
            for delivery in deliveries:
                audit_record(
                    actor=actor, action="webhook.resend", room=delivery.room, target=delivery.webhook_id,
                    address=request.META.get("REMOTE_ADDR"),
                    detail={"url": delivery.url, "event": delivery.event, "status_before": delivery.status},
                )
            transaction.on_commit(lambda: tasks.webhook_queues_drain(queues), robust=True)
        count = len(deliveries)
        noun = "delivery" if count == 1 else "deliveries"
        self.message_user(request, f"{count} {noun} queued again (same webhook-id).", messages.SUCCESS)
