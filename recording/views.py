"""The records pages: list, play and download recordings.

Access (``recording.access``): staff see every recording; a room's signed
link shows that room's. Without either the list answers 403 with a link to
the admin login (a staff member who is simply logged out finds the way in);
a download answers 404 so that it does not tell whether a recording exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.text import get_valid_filename
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from recording.access import RecordsLinkInvalid, RecordsViewer, records_viewer
from recording.downloads import downloadable_file, ranged_file_response
from recording.models import Recording
from rooms.models import Participant, Room

RECORDS_PER_PAGE = 25
IN_PROGRESS = (
    Recording.Status.RECORDING,
    Recording.Status.PENDING_MIX,
    Recording.Status.MIXING,
)


@dataclass(frozen=True)
class RecordRow:
    recording: Recording
    participants: list[str]
    download_url: str | None


def _room_participant_logins(recording: Recording) -> list[str]:
    """The logins that were in the recording's room, each once, in order of first join."""
    return list(dict.fromkeys(participant.login for participant in recording.room.participants.all()))


def _with_token(url: str, viewer: RecordsViewer) -> str:
    return f"{url}?{urlencode({'room': viewer.token})}" if viewer.token else url


def _download_url(recording: Recording, viewer: RecordsViewer) -> str | None:
    if downloadable_file(recording, recording.file_path) is None:
        return None
    return _with_token(reverse("recording:download", args=[recording.pk]), viewer)


def _forbidden(request: HttpRequest, *, link_invalid: bool) -> HttpResponse:
    login_url = f"{reverse('admin:login')}?{urlencode({REDIRECT_FIELD_NAME: reverse('recording:records')})}"
    context = {"link_invalid": link_invalid, "login_url": login_url}
    return render(request, "recording/forbidden.html", context, status=403)


@require_safe
@cache_control(private=True)
def records(request: HttpRequest) -> HttpResponse:
    try:
        viewer = records_viewer(request)
    except RecordsLinkInvalid:
        return _forbidden(request, link_invalid=True)
    if viewer is None:
        return _forbidden(request, link_invalid=False)
    recordings = viewer.recordings().prefetch_related(
        Prefetch("room__participants", queryset=Participant.objects.order_by("joined_at", "pk"))
    )
    page = Paginator(recordings, RECORDS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        RecordRow(recording, _room_participant_logins(recording), _download_url(recording, viewer))
        for recording in page
    ]
    room = Room.objects.filter(live_id=viewer.room_live_id).first() if viewer.room_live_id else None
    context = {
        "page": page,
        "rows": rows,
        "room": room,
        "one_room": viewer.room_live_id is not None,
        "in_progress": any(row.recording.status in IN_PROGRESS for row in rows),
    }
    return render(request, "recording/records.html", context)


def _download_filename(recording: Recording, path_suffix: str) -> str:
    started = recording.started_at.strftime("%Y%m%d-%H%M%S")
    who = f"-{recording.participant}" if recording.participant else ""
    return get_valid_filename(f"{recording.room.name}-{started}-{recording.kind}{who}-{recording.pk}{path_suffix}")


def _visible_recording(request: HttpRequest, pk: int) -> Recording:
    try:
        viewer = records_viewer(request)
    except RecordsLinkInvalid:
        viewer = None
    if viewer is None:
        raise Http404
    return get_object_or_404(viewer.recordings(), pk=pk)


@require_safe
@cache_control(private=True)
def download(request: HttpRequest, pk: int) -> HttpResponse | StreamingHttpResponse:
    recording = _visible_recording(request, pk)
    path = downloadable_file(recording, recording.file_path)
    if path is None:
        raise Http404
    return ranged_file_response(request, path, filename=_download_filename(recording, path.suffix))


@require_safe
@cache_control(private=True)
def sidecar(request: HttpRequest, pk: int) -> HttpResponse | StreamingHttpResponse:
    """The timing sidecar (JSON) of a recording, for tools that align streams."""
    recording = _visible_recording(request, pk)
    path = downloadable_file(recording, recording.sidecar_path)
    if path is None:
        raise Http404
    return ranged_file_response(request, path, filename=_download_filename(recording, f".sidecar{path.suffix}"))
