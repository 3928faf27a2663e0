"""The audit trail: who did what to whom, when, from where."""

from __future__ import annotations

from django.db import models


class AuditEntry(models.Model):
    """One action taken on the server; written once, never changed."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Who acted: a login ("alice"), a Django user ("user:admin"), an API key
    # ("key:main"), or "system".
    actor = models.CharField(max_length=200)
    # What they did, dotted: room.kick, stream.mute, room.end, room.lock,
    # token.mint, record.download, record.delete, ...
    action = models.CharField(max_length=64, db_index=True)
    room = models.CharField(max_length=128, blank=True, db_index=True)
    # Whom or what it was done to: a login, a stream id, a recording id.
    target = models.CharField(max_length=200, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}".strip()
