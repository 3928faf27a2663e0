"""Operator view of recordings: state, files, the hook's result, re-mix and file deletion.

Rows are written by capture and mixing, so every field is read-only and the
detail page is a view; the actions are the operator's only levers.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from recording.downloads import downloadable_file
from recording.models import Recording, RoomStems
from recording.services import recording_file_path, recording_files_delete, recording_remix
from recording.stale import recording_stale_reason, recordings_stale_q
from recording.tasks import room_mix
from recording.templatetags.recording_format import duration_ms


def operator_actor(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


CAPTURED_FIELDS = (
    "room", "stream", "kind", "participant", "stream_live_id", "node", "status", "progress",
    "started_at", "ended_at", "duration_ms", "size_bytes", "file_path", "sidecar_path",
    "failure_reason", "hook_exit_status", "hook_output", "status_changed_at", "repaired",
)


class StaleFilter(admin.SimpleListFilter):
    """Rows no worker has moved on for RECORDING_STALE_AFTER_S (see recording.stale)."""

    title = "stale"
    parameter_name = "stale"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "stale"), ("no", "not stale")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Recording]) -> QuerySet[Recording]:
        stale = recordings_stale_q(timezone.now())
        if self.value() == "yes":
            return queryset.filter(stale)
        if self.value() == "no":
            return queryset.exclude(stale)
        return queryset


class RecordedIdentityFilter(admin.SimpleListFilter):
    """"Was this person recorded?": every recording holding an identity's
    media, matched exactly (search matches parts of names): its own stream
    records, and the mixes of the rooms it was recorded in."""

    title = "recorded identity"
    parameter_name = "identity"
    # The choices list the identities with stream records, up to this many;
    # any identity can be asked for in the address (?identity=<name>).
    LISTED = 100

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        identities = (
            Recording.objects.filter(kind=Recording.Kind.STREAM).exclude(participant="")
            .order_by("participant").values_list("participant", flat=True).distinct()[: self.LISTED]
        )
        return [(identity, identity) for identity in identities]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Recording]) -> QuerySet[Recording]:
        identity = self.value()
        if not identity:
            return queryset
        own = Recording.objects.filter(kind=Recording.Kind.STREAM, participant=identity)
        return queryset.filter(
            models.Q(pk__in=own.values("pk"))
            | models.Q(kind=Recording.Kind.ROOM, room_id__in=own.values("room_id"))
        )


def _file_link(recording: Recording, relative_path: str, url_name: str) -> SafeString | str:
    """A download link for a file that may be served, else what is known about it."""
    if not relative_path:
        return "—"
    if downloadable_file(recording, relative_path) is not None:
        return format_html('<a href="{}">{}</a>', reverse(url_name, args=[recording.pk]), relative_path)
    if recording_file_path(relative_path) is None:
        return format_html("{} <em>(missing)</em>", relative_path)
    return format_html("{} <em>(not downloadable while {})</em>", relative_path, recording.get_status_display())


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin[Recording]):
    list_display = (
        "room", "kind", "participant", "status", "mixing_progress", "size", "duration", "started_at",
        "download", "reason", "hook_exit_status", "stale", "repaired",
    )
    list_filter = ("status", StaleFilter, "kind", "repaired", RecordedIdentityFilter)
    list_select_related = ("room",)
    search_fields = ("room__name", "participant")
    date_hierarchy = "started_at"
    actions = ("remix", "delete_files")
    readonly_fields = (*CAPTURED_FIELDS, "file_link", "sidecar_link", "hook_output_text", "stale")
    fieldsets = (
        (None, {"fields": ("room", "stream", "kind", "participant", "stream_live_id", "node")}),
        ("State", {"fields": ("status", "status_changed_at", "stale", "progress", "failure_reason", "repaired")}),
        ("Timing", {"fields": ("started_at", "ended_at", "duration_ms")}),
        ("Files", {"fields": ("file_link", "size_bytes", "sidecar_link")}),
        ("Hook", {"fields": ("hook_exit_status", "hook_output_text")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Recording | None = None) -> bool:
        # Without an object Django asks about the list and its actions, which
        # operators use; a recording itself is only ever viewed.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Recording | None = None) -> bool:
        # Rows are history: what an operator deletes is a recording's files,
        # through the action that writes the audit trail.
        return obj is None and super().has_delete_permission(request)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        recording = self.get_object(request, object_id)
        reason = recording_stale_reason(recording, timezone.now()) if recording is not None else None
        if reason is not None:
            self.message_user(request, f"This recording is stale: {reason}.", messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="reason")
    def reason(self, recording: Recording) -> str:
        # Why a record failed, stopped early or never started (disk quota, free space).
        return Truncator(recording.failure_reason).chars(120) or "—"

    @admin.display(description="stale")
    def stale(self, recording: Recording) -> str:
        return recording_stale_reason(recording, timezone.now()) or "—"

    @admin.display(description="progress", ordering="progress")
    def mixing_progress(self, recording: Recording) -> str:
        return f"{recording.progress}%" if recording.status == Recording.Status.MIXING else "—"

    @admin.display(description="size", ordering="size_bytes")
    def size(self, recording: Recording) -> str:
        return "—" if recording.size_bytes is None else str(filesizeformat(recording.size_bytes))

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, recording: Recording) -> str:
        return duration_ms(recording.duration_ms)

    @admin.display(description="file")
    def download(self, recording: Recording) -> SafeString | str:
        if downloadable_file(recording, recording.file_path) is None:
            return "—"
        return format_html('<a href="{}">download</a>', reverse("recording:download", args=[recording.pk]))

    @admin.display(description="file")
    def file_link(self, recording: Recording) -> SafeString | str:
        return _file_link(recording, recording.file_path, "recording:download")

    @admin.display(description="sidecar")
    def sidecar_link(self, recording: Recording) -> SafeString | str:
        return _file_link(recording, recording.sidecar_path, "recording:sidecar")

    @admin.display(description="hook output")
    def hook_output_text(self, recording: Recording) -> SafeString | str:
        return format_html('<pre class="hook-output">{}</pre>', recording.hook_output) if recording.hook_output else "—"

    @admin.action(description="Re-mix selected room recordings", permissions=["change"])
    def remix(self, request: HttpRequest, queryset: QuerySet[Recording]) -> None:
        rooms = [recording for recording in queryset if recording.kind == Recording.Kind.ROOM]
        for recording in rooms:
            recording_remix(recording=recording, actor=operator_actor(request), address=request.META.get("REMOTE_ADDR"))
            room_mix.delay(recording.pk)
        self.message_user(request, f"Queued {len(rooms)} room recording(s) for mixing.", messages.SUCCESS)
        if skipped := queryset.count() - len(rooms):
            self.message_user(
                request, f"Skipped {skipped} stream record(s): only room recordings are mixed.", messages.WARNING
            )

    @admin.action(description="Delete files of selected recordings", permissions=["delete"])
    def delete_files(self, request: HttpRequest, queryset: QuerySet[Recording]) -> None:
        recordings = list(queryset)
        for recording in recordings:
            recording_files_delete(
                recording=recording, actor=operator_actor(request), address=request.META.get("REMOTE_ADDR")
            )
        self.message_user(request, f"Deleted the files of {len(recordings)} recording(s).", messages.SUCCESS)


@admin.register(RoomStems)
class RoomStemsAdmin(admin.ModelAdmin[RoomStems]):
    """Audio stems asked for from the records pages: read-only, like the recordings."""

    list_display = ("room", "status", "progress", "size", "participants", "requested_by", "requested_at", "page")
    list_filter = ("status",)
    list_select_related = ("room",)
    search_fields = ("room__name", "requested_by")
    readonly_fields = (
        "room", "status", "task_id", "progress", "file_path", "size_bytes", "duration_ms", "stems", "requested_by",
        "requested_at", "status_changed_at", "failure_reason",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RoomStems | None = None) -> bool:
        return False

    @admin.display(description="size")
    def size(self, stems: RoomStems) -> str:
        return filesizeformat(stems.size_bytes) if stems.size_bytes is not None else "—"

    @admin.display(description="participants")
    def participants(self, stems: RoomStems) -> str:
        return ", ".join(str(stem.get("participant", "")) for stem in stems.stems) or "—"

    @admin.display(description="stems page")
    def page(self, stems: RoomStems) -> SafeString:
        return format_html('<a href="{}">open</a>', reverse("recording:stems", args=[stems.room.live_id]))
