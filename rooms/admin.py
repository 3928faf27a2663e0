"""Operator views of rooms, participants, streams and chat."""

from __future__ import annotations

import datetime
from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.text import get_valid_filename

from audit.services import audit_record
from rooms import history, moderation, services
from rooms.attendance_csv import attendance_csv
from rooms.attendance_selectors import RoomAttendance, attendance_between, rooms_attendance
from rooms.chat_search import chat_messages_matching
from rooms.models import ChatMessage, Participant, Room, Stream


def _operator(request: HttpRequest) -> tuple[str, str]:
    """Who acts (for events and the audit trail), and from where."""
    return f"user:{request.user.get_username()}", str(request.META.get("REMOTE_ADDR", ""))


class HistoryInline:
    """Inline rows are history written by the server: shown, never added."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class HistoryAdmin:
    """Rows come from what people do in rooms; operators read them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class ParticipantInline(HistoryInline, admin.TabularInline[Participant, Room]):
    model = Participant
    extra = 0
    can_delete = False
    fields = ("login", "joined_at", "left_at", "leave_reason")
    readonly_fields = fields
    show_change_link = True


class ChatMessageInline(HistoryInline, admin.TabularInline[ChatMessage, Room]):
    model = ChatMessage
    extra = 0
    can_delete = False
    fields = ("sender", "recipients", "text", "sent_at")
    readonly_fields = fields


class StreamInline(HistoryInline, admin.TabularInline[Stream, Participant]):
    model = Stream
    extra = 0
    can_delete = False
    fields = ("kind", "codec", "record", "started_at", "ended_at")
    readonly_fields = fields


class AttendanceRangeForm(forms.Form):
    first_day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    last_day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("first_day") and data.get("last_day") and data["last_day"] < data["first_day"]:
            raise forms.ValidationError("The last day comes before the first.")
        return data

    def window(self) -> tuple[datetime.datetime, datetime.datetime]:
        """From the first day's start to the end of the last (UTC)."""
        first, last = self.cleaned_data["first_day"], self.cleaned_data["last_day"]
        start = datetime.datetime.combine(first, datetime.time(), tzinfo=datetime.UTC)
        return start, datetime.datetime.combine(last, datetime.time(), tzinfo=datetime.UTC) + datetime.timedelta(days=1)


def _attendance_response(
    request: HttpRequest, attendance: list[RoomAttendance], filename: str, *, target: str
) -> HttpResponse:
    by, address = _operator(request)
    # Who was where is personal data: each export is in the audit trail.
    audit_record(actor=by, action="admin.attendance_csv", target=target[:200], address=address)
    response = HttpResponse(attendance_csv(attendance), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{get_valid_filename(filename)}"'
    return response


@admin.register(Room)
class RoomAdmin(HistoryAdmin, admin.ModelAdmin[Room]):
    list_display = ("name", "status", "record", "created_at", "idle_since", "finalized_at")
    list_filter = ("status", "record", "created_at")
    search_fields = ("name", "live_id", "participants__login")
    readonly_fields = (
        "name", "live_id", "status", "record", "created_at", "idle_since", "finalized_at", "records_links_revoked_at",
    )
    date_hierarchy = "created_at"
    inlines = [ParticipantInline, ChatMessageInline]
    actions = ["finalize_rooms", "lock_rooms", "unlock_rooms", "revoke_records_links", "attendance_csv"]

    def get_urls(self) -> list[URLPattern]:
        attendance = path(
            "attendance/", self.admin_site.admin_view(self.attendance_view), name="rooms_room_attendance"
        )
        return [attendance, *super().get_urls()]

    def attendance_view(self, request: HttpRequest) -> HttpResponse:
        """Attendance over a date range (UTC days, both included): a form, and the CSV it asks for."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = AttendanceRangeForm(request.GET or None)
        if form.is_valid():
            start, end = form.window()
            filename = f"attendance-{form.cleaned_data['first_day']}-{form.cleaned_data['last_day']}.csv"
            return _attendance_response(request, attendance_between(start, end), filename, target=filename)
        context = {**self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
                   "title": "Attendance over a date range"}
        return TemplateResponse(request, "admin/rooms/room/attendance.html", context)

    @admin.action(description="Download the attendance of the selected rooms (CSV)", permissions=["view"])
    def attendance_csv(self, request: HttpRequest, queryset: QuerySet[Room]) -> HttpResponse:
        rooms = list(queryset.order_by("created_at", "pk"))
        name = rooms[0].name if len(rooms) == 1 else f"{len(rooms)}-rooms"
        target = ",".join(room.live_id for room in rooms)
        return _attendance_response(request, rooms_attendance(rooms), f"attendance-{name}.csv", target=target)

    @admin.action(description="Finalize selected rooms (disconnect everyone)", permissions=["change"])
    def finalize_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        by, address = _operator(request)
        finalized = 0
        for room in queryset.exclude(status=Room.Status.FINALIZED):
            if async_to_sync(services.room_finalize_now)(name=room.name, live_id=room.live_id):
                finalized += 1
                audit_record(actor=by, action="admin.finalize", room=room.name, target=room.live_id, address=address)
        self.message_user(request, f"Finalized {finalized} room(s).", messages.SUCCESS)

    @admin.action(description="Lock selected rooms (no new joins)", permissions=["change"])
    def lock_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        self._lock(request, queryset, locked=True)

    @admin.action(description="Unlock selected rooms", permissions=["change"])
    def unlock_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        self._lock(request, queryset, locked=False)

    def _lock(self, request: HttpRequest, queryset: QuerySet[Room], *, locked: bool) -> None:
        by, address = _operator(request)
        changed = sum(
            async_to_sync(moderation.room_lock_set)(room=room.name, locked=locked, by=by, address=address)
            for room in queryset.exclude(status=Room.Status.FINALIZED)
        )
        self.message_user(request, f"{'Locked' if locked else 'Unlocked'} {changed} room(s).", messages.SUCCESS)

    def has_revoke_records_links_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("rooms.revoke_records_links")

    @admin.action(
        description="Revoke the links to the selected rooms' records", permissions=["revoke_records_links"]
    )
    def revoke_records_links(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        by, address = _operator(request)
        rooms = list(queryset)
        for room in rooms:
            history.room_records_links_revoke(live_id=room.live_id, actor=by, address=address)
        self.message_user(
            request, f"Revoked the records links of {len(rooms)} room(s): links given before now no longer work.",
            messages.SUCCESS,
        )


@admin.register(Participant)
class ParticipantAdmin(HistoryAdmin, admin.ModelAdmin[Participant]):
    list_display = ("login", "room", "joined_at", "left_at", "leave_reason")
    list_filter = ("leave_reason", "joined_at")
    search_fields = ("login", "room__name")
    readonly_fields = ("room", "login", "session", "joined_at", "left_at", "leave_reason")
    list_select_related = ("room",)
    inlines = [StreamInline]
    actions = ["kick_participants"]

    @admin.action(description="Remove selected participants from their rooms", permissions=["change"])
    def kick_participants(self, request: HttpRequest, queryset: QuerySet[Participant]) -> None:
        by, address = _operator(request)
        kicked = 0
        for participant in queryset.filter(left_at__isnull=True).select_related("room"):
            kicked += async_to_sync(moderation.participant_kick)(
                room=participant.room.name, login=participant.login, by=by, address=address
            )
        self.message_user(request, f"Removed {kicked} participant(s).", messages.SUCCESS)


@admin.register(Stream)
class StreamAdmin(HistoryAdmin, admin.ModelAdmin[Stream]):
    list_display = ("live_id", "kind", "participant", "codec", "record", "started_at", "ended_at")
    list_filter = ("kind", "codec", "record")
    search_fields = ("live_id", "participant__login", "participant__room__name")
    readonly_fields = ("participant", "live_id", "kind", "record", "codec", "started_at", "ended_at")
    actions = ["mute_streams", "unmute_streams"]

    @admin.action(description="Mute selected live streams (stop forwarding audio and video)", permissions=["change"])
    def mute_streams(self, request: HttpRequest, queryset: QuerySet[Stream]) -> None:
        self._mute(request, queryset, muted=True)

    @admin.action(description="Unmute selected live streams", permissions=["change"])
    def unmute_streams(self, request: HttpRequest, queryset: QuerySet[Stream]) -> None:
        self._mute(request, queryset, muted=False)

    def _mute(self, request: HttpRequest, queryset: QuerySet[Stream], *, muted: bool) -> None:
        by, address = _operator(request)
        changed = 0
        for stream in queryset.filter(ended_at__isnull=True).select_related("participant__room"):
            changed += async_to_sync(moderation.stream_mute_by)(
                room=stream.participant.room.name, stream=stream.live_id, audio=muted, video=muted, by=by,
                address=address,
            )
        self.message_user(request, f"{'Muted' if muted else 'Unmuted'} {changed} stream(s).", messages.SUCCESS)


@admin.register(ChatMessage)
class ChatMessageAdmin(HistoryAdmin, admin.ModelAdmin[ChatMessage]):
    list_display = ("sender", "room", "text", "recipients", "sent_at", "moment")
    list_filter = ("room__name",)
    # The search box runs the archive's full-text search (``get_search_results``).
    search_fields = ("text",)
    search_help_text = "Words of public messages (full-text; private messages are not searched)."
    readonly_fields = ("room", "public_id", "seq", "sender", "recipients", "text", "sent_at", "sent_at_ms")
    list_select_related = ("room",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ChatMessage], search_term: str
    ) -> tuple[QuerySet[ChatMessage], bool]:
        if not search_term.strip():
            return queryset, False
        return chat_messages_matching(queryset, search_term), False

    @admin.display(description="In the archive")
    def moment(self, message: ChatMessage) -> str:
        """A link to the room page at the moment the message was sent (public messages of ended rooms)."""
        if message.recipients is not None or message.room.status != Room.Status.FINALIZED:
            return "—"
        return format_html('<a href="{}">play</a>', reverse("recording:chat_message", args=[message.public_id]))
