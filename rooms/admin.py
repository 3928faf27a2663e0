"""Operator views of rooms, participants, streams and chat."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from rooms import services
from rooms.models import ChatMessage, Participant, Room, Stream


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


@admin.register(Room)
class RoomAdmin(HistoryAdmin, admin.ModelAdmin[Room]):
    list_display = ("name", "status", "record", "created_at", "idle_since", "finalized_at")
    list_filter = ("status", "record", "created_at")
    search_fields = ("name", "live_id", "participants__login")
    readonly_fields = ("name", "live_id", "status", "record", "created_at", "idle_since", "finalized_at")
    date_hierarchy = "created_at"
    inlines = [ParticipantInline, ChatMessageInline]
    actions = ["finalize_rooms"]

    @admin.action(description="Finalize selected rooms (disconnect everyone)")
    def finalize_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        finalized = 0
        for room in queryset.exclude(status=Room.Status.FINALIZED):
            finalized += async_to_sync(services.room_finalize_now)(name=room.name, live_id=room.live_id)
        self.message_user(request, f"Finalized {finalized} room(s).", messages.SUCCESS)


@admin.register(Participant)
class ParticipantAdmin(HistoryAdmin, admin.ModelAdmin[Participant]):
    list_display = ("login", "room", "joined_at", "left_at", "leave_reason")
    list_filter = ("leave_reason", "joined_at")
    search_fields = ("login", "room__name")
    readonly_fields = ("room", "login", "session", "joined_at", "left_at", "leave_reason")
    list_select_related = ("room",)
    inlines = [StreamInline]


@admin.register(Stream)
class StreamAdmin(HistoryAdmin, admin.ModelAdmin[Stream]):
    list_display = ("live_id", "kind", "participant", "codec", "record", "started_at", "ended_at")
    list_filter = ("kind", "codec", "record")
    search_fields = ("live_id", "participant__login", "participant__room__name")
    readonly_fields = ("participant", "live_id", "kind", "record", "codec", "started_at", "ended_at")


@admin.register(ChatMessage)
class ChatMessageAdmin(HistoryAdmin, admin.ModelAdmin[ChatMessage]):
    list_display = ("sender", "room", "text", "recipients", "sent_at")
    list_filter = ("room__name",)
    search_fields = ("sender", "text", "room__name")
    readonly_fields = ("room", "public_id", "seq", "sender", "recipients", "text", "sent_at", "sent_at_ms")
    list_select_related = ("room",)
