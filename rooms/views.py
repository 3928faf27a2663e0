"""Pages: the landing page and the three room pages (their logic is in static/pages/)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "rooms/landing.html")


def conference(request: HttpRequest) -> HttpResponse:
    """Every participant's camera in a grid."""
    return render(request, "rooms/conference.html")


def chat(request: HttpRequest) -> HttpResponse:
    """Two-way video chat: the other participant large, yourself small."""
    return render(request, "rooms/chat.html")


def screen(request: HttpRequest) -> HttpResponse:
    """Two-way video chat with screen sharing."""
    return render(request, "rooms/screen.html")
