"""Operator view of recordings (capture and mixing actions arrive with them)."""

from django.contrib import admin

from recording.models import Recording


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin[Recording]):
    list_display = ("room", "kind", "status", "progress", "started_at", "ended_at", "size_bytes")
    list_filter = ("kind", "status")
    search_fields = ("room__name", "file_path")
    readonly_fields = (
        "room", "stream", "kind", "status", "progress", "file_path", "sidecar_path", "size_bytes",
        "duration_ms", "started_at", "ended_at", "failure_reason", "hook_exit_status", "hook_output",
    )
