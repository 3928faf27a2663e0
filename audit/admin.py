"""The audit trail in the admin: listed and searched, never edited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEntry


class ReadOnlyAdmin:
    """Rows written by the server: listed and searched, never added, changed or deleted by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin, admin.ModelAdmin[AuditEntry]):
    list_display = ("at", "actor", "action", "room", "target", "address")
    list_filter = ("action",)
    search_fields = ("actor", "room", "target", "address")
    date_hierarchy = "at"
    readonly_fields = ("at", "actor", "action", "room", "target", "address", "detail")
