"""A finalized room's audio stems: the page that asks for them and says how
far they are, and the ZIP download.

Who may use them is decided as for the room's archive page
(``recording.access``): the view permission, or the room's link. Asking for
stems and downloading them are written to the audit trail.
"""

from __future__ import annotations

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.text import get_valid_filename
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_http_methods, require_safe

from audit.services import audit_record
from recording.access import RecordsViewer
from recording.downloads import ranged_file_response
from recording.models import RoomStems
from recording.services import recording_file_path
from recording.stems_services import room_stems_request, room_stems_sources
from recording.tasks import room_stems_make
from recording.views import visible_finalized_room
from rooms.models import Room


def _viewer_actor(viewer: RecordsViewer, room: Room) -> str:
    return f"user:{viewer.username}" if viewer.username is not None else viewer.identities.get(room.live_id, "")


@require_http_methods(["GET", "HEAD", "POST"])
@cache_control(private=True)
def room_stems(request: HttpRequest, live_id: str) -> HttpResponse:
    visible = visible_finalized_room(request, live_id)
    if isinstance(visible, HttpResponse):
        return visible
    viewer, room = visible
    if request.method == "POST":
        if not room_stems_sources(room):
            raise Http404
        requested, due = room_stems_request(
            room=room, by=_viewer_actor(viewer, room), address=request.META.get("REMOTE_ADDR")
        )
        if due:
            transaction.on_commit(lambda: room_stems_make.delay(requested.pk))
        # Post/redirect/get: a reload does not ask again.
        return HttpResponseRedirect(reverse("recording:stems", args=[room.live_id]))
    stems = RoomStems.objects.filter(room=room).first()
    ready = stems is not None and stems.status == RoomStems.Status.READY and recording_file_path(stems.file_path)
    context = {
        "room": room,
        "stems": stems,
        "ready": bool(ready),
        "working": stems is not None and stems.status in (RoomStems.Status.PENDING, RoomStems.Status.MAKING),
        "recorded": bool(room_stems_sources(room)),
        "archive_url": reverse("recording:room", args=[room.live_id]),
    }
    return render(request, "recording/stems.html", context)


@require_safe
@cache_control(private=True)
def room_stems_download(request: HttpRequest, live_id: str) -> HttpResponse | StreamingHttpResponse:
    visible = visible_finalized_room(request, live_id)
    if isinstance(visible, HttpResponse):
        raise Http404  # a download never tells whether a room exists
    viewer, room = visible
    stems = RoomStems.objects.filter(room=room, status=RoomStems.Status.READY).first()
    path = recording_file_path(stems.file_path) if stems is not None and stems.file_path else None
    if path is None:
        raise Http404
    requested = request.headers.get("Range")
    if request.method == "GET" and (requested is None or requested.replace(" ", "").startswith("bytes=0-")):
        audit_record(
            actor=_viewer_actor(viewer, room), action="stems.download", room=room.name, target=room.live_id,
            address=request.META.get("REMOTE_ADDR"),
        )
    started = room.created_at.strftime("%Y%m%d-%H%M%S")
    return ranged_file_response(request, path, filename=get_valid_filename(f"{room.name}-{started}-stems.zip"))
