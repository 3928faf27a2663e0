"""Who may see which recordings on the records pages.

Staff see every room. Anyone holding a room's signed link (``?room=<token>``,
see ``recording.links``) sees that room only, without an account: the link is
what the room's participants get when the room ends. Everyone else sees
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import HttpRequest

from recording.links import room_live_id_from_token
from recording.models import Recording


@dataclass(frozen=True)
class RecordsViewer:
    # None: every room (staff). Otherwise the one room a signed link names.
    room_live_id: str | None
    # The signed link's token, carried on to download links.
    token: str | None = None

    def recordings(self) -> QuerySet[Recording]:
        recordings = Recording.objects.select_related("room", "stream")
        if self.room_live_id is not None:
            recordings = recordings.filter(room__live_id=self.room_live_id)
        return recordings.order_by("-started_at", "-pk")


class RecordsLinkInvalid(Exception):
    """A ``?room=`` token that is forged, damaged or expired."""


def records_viewer(request: HttpRequest) -> RecordsViewer | None:
    """What the request may see, or None when it may see nothing.

    A token in the query wins over the session, so a staff member following a
    participant's link sees the same page the participant does.
    """
    token = request.GET.get("room")
    if token is not None:
        room_live_id = room_live_id_from_token(token)
        if room_live_id is None:
            raise RecordsLinkInvalid
        return RecordsViewer(room_live_id=room_live_id, token=token)
    if request.user.is_staff:
        return RecordsViewer(room_live_id=None)
    return None
