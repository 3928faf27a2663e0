"""The live view's page (with the 30-day charts) and the state it polls."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from console.access import amay_view_live, may_view_live
from console.daily import daily_history
from console.operator_state import operator_state
from console.svg_charts import bar_chart

# How often the page asks for state.json.
POLL_INTERVAL_MS = 2500


@require_GET
@never_cache
def live_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (user.is_active and user.is_staff):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if not may_view_live(user):
        raise PermissionDenied
    history = daily_history()
    series = (
        ("Rooms opened per day", "rooms", [float(count) for count in history.rooms]),
        ("Participant-minutes per day", "minutes", history.participant_minutes),
        ("Recorded hours per day", "hours", history.recorded_hours),
    )
    charts = [
        {"title": title, "total": sum(values), "svg": bar_chart(history.days, values, title=title, unit=unit)}
        for title, unit, values in series
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Live",
        # The width goes to the tables; the admin's index is one click away.
        "is_nav_sidebar_enabled": False,
        "charts": charts,
        "poll_interval_ms": POLL_INTERVAL_MS,
    }
    return render(request, "console/live.html", context)


@require_GET
@never_cache
async def live_state(request: HttpRequest) -> HttpResponse:
    # A script reads this: a refusal is a status, not a login page.
    user = await request.auser()
    if not await amay_view_live(user):
        return JsonResponse({"error": "forbidden"}, status=403)
    return JsonResponse(await operator_state())
