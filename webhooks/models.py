"""The delivery log: one row per event and URL, from queued to delivered or given up."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed (gave up)"

    # The webhook-id header: one per event, the same for every URL and every
    # attempt, so a receiver can drop what it has already seen.
    webhook_id = models.CharField(max_length=64, db_index=True)
    url = models.URLField(max_length=2000)
    event = models.CharField(max_length=32, db_index=True)
    room = models.CharField(max_length=128, db_index=True, help_text="The room's name.")
    # The room's live id: deliveries of one room to one URL go out oldest first.
    room_key = models.CharField(max_length=64)
    # The body exactly as every attempt sends it.
    payload = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    give_up_at = models.DateTimeField(help_text="No attempt is made after this; the delivery is then failed.")
    # Set while a worker is posting this delivery: the head of its room's
    # queue is claimed by one worker at a time, which keeps the queue in order.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["webhook_id", "url"], name="one_delivery_per_event_and_url")]
        indexes = [
            models.Index(fields=["url", "room_key", "status"], name="webhook_room_queue"),
            models.Index(fields=["status", "next_attempt_at"], name="webhook_due"),
        ]
        permissions = [("resend_webhookdelivery", "Can resend webhook deliveries")]

    def __str__(self) -> str:
        return f"{self.event} of {self.room} to {self.url} ({self.status})"
