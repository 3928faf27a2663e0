"""Who may see the live view: active staff with ``console.view_live_rooms`` (superusers always)."""

from __future__ import annotations

from typing import Any

PERMISSION = "console.view_live_rooms"


def may_view_live(user: Any) -> bool:
    # has_perm answers True for every active superuser.
    return bool(user.is_active and user.is_staff and user.has_perm(PERMISSION))


async def amay_view_live(user: Any) -> bool:
    """``may_view_live`` from async code (the permission check reads the database)."""
    return bool(user.is_active and user.is_staff and await user.ahas_perm(PERMISSION))
