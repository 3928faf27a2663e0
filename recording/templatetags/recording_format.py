"""Filters that show recording figures the way people read them."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration_ms(milliseconds: int | None) -> str:
    """``1:02:03`` or ``2:03``; an em dash when the duration is not known yet."""
    if milliseconds is None:
        return "—"
    minutes, seconds = divmod(round(milliseconds / 1000), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"
