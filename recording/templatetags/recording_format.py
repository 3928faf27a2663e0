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


@register.filter
def clock_s(seconds: float) -> str:
    """A moment on a recording's clock: ``0:07``, ``1:02:03``, ``-0:05`` before it starts."""
    sign = "-" if seconds < 0 else ""
    minutes, whole = divmod(int(abs(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours}:{minutes:02}:{whole:02}" if hours else f"{sign}{minutes}:{whole:02}"
