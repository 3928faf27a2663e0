"""Recordings: per-stream records and whole-room mixes."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from rooms.models import Room, Stream


class Recording(models.Model):
    class Kind(models.TextChoices):
        STREAM = "stream", "stream record"
        ROOM = "room", "room mix"

    class Status(models.TextChoices):
        RECORDING = "RECORDING", "recording"
        PARTIAL = "PARTIAL", "partial"
        PENDING_MIX = "PENDING_MIX", "pending mix"
        MIXING = "MIXING", "mixing"
        READY = "READY", "ready"
        FAILED = "FAILED", "failed"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="recordings")
    stream = models.ForeignKey(
        Stream, on_delete=models.SET_NULL, null=True, blank=True, related_name="recordings"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # The live stream id names a stream record's files and finds its row
    # before the Stream history row exists.
    stream_live_id = models.CharField(max_length=32, blank=True, db_index=True)
    participant = models.CharField(max_length=64, blank=True)
    # The media node writing a stream record: a record whose node died is
    # PARTIAL (the file so far stays playable) or FAILED, never left RECORDING.
    node = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECORDING)
    # When the row entered its status, or (MIXING) when its worker last
    # reported: the admin calls a row stale from this, without a worker.
    status_changed_at = models.DateTimeField(default=timezone.now)
    # The Celery task that holds the mix: a duplicate message finds the mix
    # taken and does nothing; a redelivery of the same message takes it back.
    mix_task_id = models.CharField(max_length=64, blank=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Mixing progress, percent.")
    file_path = models.CharField(max_length=512, blank=True, help_text="Relative to RECORDINGS_ROOT.")
    sidecar_path = models.CharField(max_length=512, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    # A room mix's time 0 on the server's clock (epoch ms): where its first
    # stream record's media starts. The archive page and the chat subtitles
    # place the room's history on the mix with it. (A stream record's is in
    # its sidecar.)
    media_started_at_ms = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)
    # A PARTIAL record rewritten with a duration and a seek index after its
    # node was killed (recording.repair); duration_ms is then the repaired file's.
    repaired = models.BooleanField(
        default=False, help_text="Rewritten with a duration and a seek index after its media node was killed."
    )
    hook_exit_status = models.IntegerField(null=True, blank=True)
    hook_output = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["stream_live_id"], condition=models.Q(kind="stream"), name="one_record_per_stream"
            ),
            models.UniqueConstraint(fields=["room"], condition=models.Q(kind="room"), name="one_mix_per_room"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} recording of {self.room.name} ({self.status.lower()})"


class RoomStems(models.Model):
    """A room's per-participant audio stems: one ZIP of FLAC files, made on request by a Celery task."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "waiting for a worker"
        MAKING = "MAKING", "being made"
        READY = "READY", "ready"
        FAILED = "FAILED", "failed"

    room = models.OneToOneField(Room, on_delete=models.CASCADE, related_name="stems")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # The Celery task making them: a duplicate message finds them taken.
    task_id = models.CharField(max_length=64, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    file_path = models.CharField(max_length=512, blank=True, help_text="Relative to RECORDINGS_ROOT.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    # One entry per stem: {"participant", "file", "records"}.
    stems = models.JSONField(default=list, blank=True)
    requested_by = models.CharField(max_length=200, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(default=timezone.now)
    failure_reason = models.TextField(blank=True)

    class Meta:
        verbose_name = "room audio stems"
        verbose_name_plural = "room audio stems"

    def __str__(self) -> str:
        return f"audio stems of {self.room.name} ({self.status.lower()})"
