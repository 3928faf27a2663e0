"""The permission to see the live view; the view itself keeps no rows."""

from __future__ import annotations

from django.db import models


class LiveView(models.Model):
    """Holds the ``console.view_live_rooms`` permission (no table: nothing is stored)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_live_rooms", "Can see the live operator view: rooms, streams, nodes, queue")]
