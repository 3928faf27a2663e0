"""Pages: the landing page, the login page and the three room pages (their
logic is in static/pages/)."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "rooms/landing.html")


def _room_page_context() -> dict[str, Any]:
    """What the page script needs to know before joining: whether the server
    admits only tokens and whether it can sign them (who is logged in comes
    from the request)."""
    return {
        "room_auth": settings.ROOM_AUTH,
        "tokens_available": bool(settings.API_KEYS),
    }


# The pages post to /api/token with the CSRF cookie's value in a header.
@ensure_csrf_cookie
def conference(request: HttpRequest) -> HttpResponse:
    """Every participant's camera in a grid."""
    return render(request, "rooms/conference.html", _room_page_context())


@ensure_csrf_cookie
def chat(request: HttpRequest) -> HttpResponse:
    """Two-way video chat: the other participant large, yourself small."""
    return render(request, "rooms/chat.html", _room_page_context())


@ensure_csrf_cookie
def screen(request: HttpRequest) -> HttpResponse:
    """Two-way video chat with screen sharing."""
    return render(request, "rooms/screen.html", _room_page_context())
