"""History of rooms: who was where, what was published and said.

Live membership is in the live state (``rooms.live``); these rows are the
durable record the admin, recording and chat history read.
"""

from __future__ import annotations

import datetime

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Room(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "ACTIVE", "active"
        IDLE = "IDLE", "idle"
        FINALIZED = "FINALIZED", "finalized"

    name = models.CharField(max_length=128, db_index=True)
    # The identity the live state gave this room; a name used again after
    # finalization gets a new one, and with it a new row.
    live_id = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    record = models.BooleanField(default=False, help_text="Room multi-record: mix all streams after finalization.")
    created_at = models.DateTimeField(auto_now_add=True)
    idle_since = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    # Links to the room's records issued up to this moment no longer work.
    records_links_revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("revoke_records_links", "Can revoke the links to a room's records")]
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                condition=~Q(status="FINALIZED"),
                name="one_open_room_per_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status.lower()})"


class Participant(models.Model):
    class LeaveReason(models.TextChoices):
        LEAVE = "leave", "leave"
        DISCONNECT = "disconnect", "disconnect"
        TIMEOUT = "timeout", "timeout"
        KICKED = "kicked", "removed by a moderator"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="participants")
    login = models.CharField(max_length=64)
    session = models.CharField(max_length=64, help_text="Signaling session that joined.")
    joined_at = models.DateTimeField(default=timezone.now)
    # The room's event count at this join: one row per join, however often
    # its (queued) history write is applied.
    joined_seq = models.BigIntegerField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    leave_reason = models.CharField(max_length=16, choices=LeaveReason.choices, blank=True)

    class Meta:
        ordering = ["joined_at"]
        indexes = [models.Index(fields=["room", "login"])]
        constraints = [models.UniqueConstraint(fields=["room", "joined_seq"], name="one_row_per_join")]

    def __str__(self) -> str:
        return f"{self.login} in {self.room.name}"


class Stream(models.Model):
    class Kind(models.TextChoices):
        CAMERA = "camera", "camera"
        SCREEN = "screen", "screen"

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="streams")
    live_id = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    record = models.BooleanField(default=False)
    codec = models.CharField(max_length=16, blank=True)
    # When its first media arrived (the history write carries the moment).
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at"]

    def __str__(self) -> str:
        return f"{self.kind} of {self.participant.login}"


class StreamMute(models.Model):
    """A stream's tracks muted or unmuted, by its publisher or by a moderator (``by``).

    ``audio`` and ``video`` are the stream's state after the change, as the
    room was told it (``room.muted``).
    """

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="mutes")
    # Made by the action: applying its (queued) history write twice keeps one row.
    mute_id = models.CharField(max_length=32, unique=True)
    audio = models.BooleanField()
    video = models.BooleanField()
    by = models.CharField(max_length=64, blank=True, help_text="The moderator who did it; empty: the publisher.")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"mute of {self.stream}"


class ChatMessage(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    public_id = models.CharField(max_length=32, unique=True)
    seq = models.BigIntegerField(default=0, help_text="The room's event count when it was sent.")
    sender = models.CharField(max_length=64)
    # None for a public message, else the logins it was delivered to.
    recipients = models.JSONField(null=True, blank=True)
    text = models.TextField()
    sent_at_ms = models.BigIntegerField(help_text="Server time, ms since the Unix epoch.")
    # A public message's words for full-text search (``rooms.chat_search``),
    # made when it is stored; PostgreSQL only, None for a private message.
    search_document = SearchVectorField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["seq", "id"]
        indexes = [
            models.Index(fields=["room", "seq"]),
            # Created on PostgreSQL only (see the migration that adds it).
            GinIndex(fields=["search_document"], name="chat_search_document"),
            # Search answers newest first: for a word in many messages PostgreSQL
            # walks this and stops at the page's last hit instead of sorting them all.
            models.Index(
                fields=["-sent_at_ms", "-id"], condition=Q(recipients__isnull=True), name="chat_public_newest"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sender}: {self.text[:40]}"

    @property
    def sent_at(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.sent_at_ms / 1000, tz=datetime.UTC)


class RoomInvite(models.Model):
    """The row behind an invite link that may be used a limited number of
    times; the link itself is a signed value naming this row (see
    ``rooms.invites``). Invites without a use limit have no row."""

    room = models.CharField(max_length=128)
    # ``manage.py room_token --grant`` names: publish, subscribe, chat, ...
    grants = models.JSONField(default=list)
    max_uses = models.PositiveIntegerField()
    # Logins admitted so far (each login counts once: a guest who reloads
    # the page does not use the invite up).
    uses = models.PositiveIntegerField(default=0)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("moderate_room", "Can moderate rooms from the pages: kick, mute, lock, end, invite guests")]
        constraints = [
            models.CheckConstraint(condition=Q(uses__lte=models.F("max_uses")), name="invite_uses_within_max")
        ]

    def __str__(self) -> str:
        return f"invite to {self.room} ({self.uses}/{self.max_uses})"


class RoomInviteUse(models.Model):
    """A login admitted with an invite that has a use limit."""

    invite = models.ForeignKey(RoomInvite, on_delete=models.CASCADE, related_name="admitted")
    login = models.CharField(max_length=64)
    used_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["invite", "login"], name="one_use_per_login")]

    def __str__(self) -> str:
        return f"{self.login} by {self.invite}"
