"""Search of the public chat of the rooms a records viewer may see.

Only finalized rooms have an archive page, so only their chat is searched;
a viewer without the view permission searches the rooms of their grants
only (``recording.access``). Each hit is placed on its room's clock, the
one the archive page's player and timeline use (``recording.archive``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.urls import reverse

from recording.access import RecordsViewer
from recording.archive import room_clock_origin_ms
from rooms.chat_search import chat_messages_matching
from rooms.models import ChatMessage, Room

SEARCH_HITS_MAX = 50


@dataclass(frozen=True)
class ChatHit:
    message: ChatMessage
    at_s: float  # on the room's clock: where the archive page's player shows it

    @property
    def url(self) -> str:
        """The room's archive page, its player at this moment."""
        base = reverse("recording:room", args=[self.message.room.live_id])
        return f"{base}?{urlencode({'t': f'{max(self.at_s, 0):.3f}'})}"


def chat_search_messages(viewer: RecordsViewer, query: str, *, limit: int = SEARCH_HITS_MAX) -> list[ChatMessage]:
    """The newest public messages matching ``query`` in the finalized rooms ``viewer`` may see."""
    if not query.strip() or not viewer.may_see_something:
        return []
    messages = ChatMessage.objects.filter(room__status=Room.Status.FINALIZED)
    if not viewer.every_room:
        messages = messages.filter(room__live_id__in=list(viewer.identities))
    matching = chat_messages_matching(messages, query).select_related("room")
    return list(matching.defer("search_document").order_by("-sent_at_ms", "-pk")[:limit])


def chat_search(viewer: RecordsViewer, query: str, *, limit: int = SEARCH_HITS_MAX) -> list[ChatHit]:
    """Hits for ``query``, newest first, each placed on its room's clock."""
    messages = chat_search_messages(viewer, query, limit=limit)
    origins: dict[int, float] = {}
    hits = []
    for message in messages:
        if message.room_id not in origins:
            origins[message.room_id] = room_clock_origin_ms(message.room)
        hits.append(ChatHit(message, (message.sent_at_ms - origins[message.room_id]) / 1000))
    return hits
