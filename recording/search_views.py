"""The records pages' chat search, and the link from a message to its moment.

Access is that of every records page (``recording.access``): the search
covers the rooms the viewer may see, and a message in any other room is
answered 404, as a room page is.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from recording.access import records_viewer
from recording.archive import room_clock_origin_ms
from recording.chat_search import SEARCH_HITS_MAX, ChatHit, chat_search
from recording.views import records_forbidden
from rooms.models import ChatMessage, Room

QUERY_MAX_CHARS = 200


@require_safe
@cache_control(private=True)
def records_search(request: HttpRequest) -> HttpResponse:
    viewer = records_viewer(request)
    if not viewer.may_see_something:
        return records_forbidden(request, links_refused=bool(viewer.refused))
    query = request.GET.get("q", "").strip()[:QUERY_MAX_CHARS]
    hits = chat_search(viewer, query) if query else []
    context = {"query": query, "hits": hits, "hits_max": SEARCH_HITS_MAX, "every_room": viewer.every_room}
    return render(request, "recording/search.html", context)


@require_safe
@cache_control(private=True)
def chat_message_moment(request: HttpRequest, public_id: str) -> HttpResponse:
    """Redirect to the room page of a public message, its player at the moment it was sent."""
    viewer = records_viewer(request)
    if not viewer.may_see_something:
        return records_forbidden(request, links_refused=bool(viewer.refused))
    message = (
        ChatMessage.objects.filter(public_id=public_id, recipients__isnull=True, room__status=Room.Status.FINALIZED)
        .select_related("room").first()
    )
    if message is None or not (viewer.every_room or message.room.live_id in viewer.identities):
        raise Http404
    hit = ChatHit(message, (message.sent_at_ms - room_clock_origin_ms(message.room)) / 1000)
    return HttpResponseRedirect(hit.url)
