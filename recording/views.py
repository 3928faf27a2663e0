"""The records pages: list, play and download recordings; turn a room's link into a cookie.

Access (``recording.access``): users with the view permission see every
recording; the grants in a visitor's cookie show their rooms'. Without
either the list answers 403 with a link to the site's login (an operator who
is simply logged out finds the way in, and so does a participant whose link
needs a login under its identity, see below); a download answers 404 so
that it does not tell whether a recording exists.

A room's link is ``/records/#access=<token>``. The fragment never reaches
the server, so the page's script posts the token to ``records_access``,
which answers with the grant in an HttpOnly cookie limited to ``/records/``;
no request line, and so no access log, ever holds it. With ``ROOM_AUTH=token``
the exchange also needs a proof of the link's identity
(``recording.link_identity``): the meeting pages post the link themselves
with their access token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render, resolve_url
from django.urls import reverse
from django.utils.text import get_valid_filename
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_POST, require_safe

from audit.services import audit_record
from recording.access import (
    RECORDS_COOKIE,
    GrantRefusal,
    RecordsViewer,
    records_link_grant,
    records_viewer,
)
from recording.downloads import downloadable_file, ranged_file_response
from recording.link_identity import LINK_IDENTITY, records_link_identity_refusal
from recording.links import RecordsGrant, records_grants_cookie
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
    archive_url: str | None  # the room's archive page, once the room is finalized


def _room_participant_logins(recording: Recording) -> list[str]:
    """The logins that were in the recording's room, each once, in order of first join."""
    return list(dict.fromkeys(participant.login for participant in recording.room.participants.all()))


def _download_url(recording: Recording) -> str | None:
    if downloadable_file(recording, recording.file_path) is None:
        return None
    return reverse("recording:download", args=[recording.pk])


def _archive_url(room: Room) -> str | None:
    return reverse("recording:room", args=[room.live_id]) if room.status == Room.Status.FINALIZED else None


def records_forbidden(request: HttpRequest, *, links_refused: bool) -> HttpResponse:
    # The site's login, not the admin's: it takes users who are not staff.
    login_url = f"{resolve_url(settings.LOGIN_URL)}?{urlencode({REDIRECT_FIELD_NAME: reverse('recording:records')})}"
    context = {"links_refused": links_refused, "login_url": login_url}
    return render(request, "recording/forbidden.html", context, status=403)


def visible_finalized_room(request: HttpRequest, live_id: str) -> tuple[RecordsViewer, Room] | HttpResponse:
    """The viewer and the ended room ``live_id`` they may see, or the refusal page (404 when hidden)."""
    viewer = records_viewer(request)
    if not viewer.may_see_something:
        return records_forbidden(request, links_refused=bool(viewer.refused))
    room = Room.objects.filter(live_id=live_id, status=Room.Status.FINALIZED).first()
    if room is None or not (viewer.every_room or room.live_id in viewer.identities):
        raise Http404
    return viewer, room


def _grants_cookie_set(response: HttpResponse, grants: list[RecordsGrant]) -> None:
    """Keep ``grants`` in the cookie, or drop the cookie when there are none."""
    path = reverse("recording:records")
    if not grants:
        response.delete_cookie(RECORDS_COOKIE, path=path, samesite="Strict")
        return
    response.set_cookie(
        RECORDS_COOKIE, records_grants_cookie(grants), max_age=settings.RECORDS_LINK_MAX_AGE_S, path=path,
        secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Strict",
    )


@require_safe
@cache_control(private=True)
def records(request: HttpRequest) -> HttpResponse:
    viewer = records_viewer(request)
    response = _records_page(request, viewer) if viewer.may_see_something else records_forbidden(
        request, links_refused=bool(viewer.refused)
    )
    if viewer.refused:
        _grants_cookie_set(response, list(viewer.grants))  # forget what is no longer honoured
    return response


def _records_page(request: HttpRequest, viewer: RecordsViewer) -> HttpResponse:
    recordings = viewer.recordings().prefetch_related(
        Prefetch("room__participants", queryset=Participant.objects.order_by("joined_at", "pk"))
    )
    page = Paginator(recordings, RECORDS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        RecordRow(
            recording, _room_participant_logins(recording), _download_url(recording), _archive_url(recording.room)
        )
        for recording in page
    ]
    identities = viewer.identities
    room = Room.objects.filter(live_id=next(iter(identities))).first() if len(identities) == 1 else None
    context = {
        "page": page,
        "rows": rows,
        "room": room,
        "room_archive_url": _archive_url(room) if room else None,
        "identity": identities.get(room.live_id) if room else None,
        "every_room": viewer.every_room,
        "one_room": room is not None,
        "in_progress": any(row.recording.status in IN_PROGRESS for row in rows),
    }
    return render(request, "recording/records.html", context)


REFUSAL_MESSAGES = {
    GrantRefusal.INVALID: "This link to a room's records is not valid.",
    GrantRefusal.EXPIRED: "This link to a room's records has expired: links stay valid for a limited time "
    "after the room ends.",
    GrantRefusal.REVOKED: "This link to a room's records was revoked.",
}


@require_POST
@never_cache
def records_access(request: HttpRequest) -> HttpResponse:
    """Take a link's token from the POST body and answer with its grant in the cookie (204), or 403.

    With ``ROOM_AUTH=token`` the request must prove the link's identity: an
    ``Authorization: Bearer`` access token of that identity, or a login.
    """
    grant = records_link_grant(request.POST.get("access", ""))
    if isinstance(grant, GrantRefusal):
        return JsonResponse({"error": str(grant), "message": REFUSAL_MESSAGES[grant]}, status=403)
    identity_refusal = records_link_identity_refusal(request, grant)
    if identity_refusal is not None:
        return JsonResponse(
            {"error": LINK_IDENTITY, "message": identity_refusal}, status=403, json_dumps_params={"ensure_ascii": False}
        )
    response = HttpResponse(status=204)
    _grants_cookie_set(response, [*records_viewer(request).grants, grant])
    return response


def _download_filename(recording: Recording, path_suffix: str) -> str:
    started = recording.started_at.strftime("%Y%m%d-%H%M%S")
    who = f"-{recording.participant}" if recording.participant else ""
    return get_valid_filename(f"{recording.room.name}-{started}-{recording.kind}{who}-{recording.pk}{path_suffix}")


def visible_recording(request: HttpRequest, pk: int) -> tuple[RecordsViewer, Recording]:
    viewer = records_viewer(request)
    if not viewer.may_see_something:
        raise Http404
    return viewer, get_object_or_404(viewer.recordings(), pk=pk)


# A player asks for a file again at every seek, each time from the byte it
# needs; a read from the start (or a request without a range) is one
# download or one viewing worth an audit entry.
_FROM_THE_START = re.compile(r"\s*bytes=0*-")


def download_audit(request: HttpRequest, viewer: RecordsViewer, recording: Recording, file: str) -> None:
    if request.method != "GET":
        return
    requested = request.headers.get("Range")
    if requested is not None and _FROM_THE_START.match(requested) is None:
        return
    audit_record(
        actor=viewer.actor(recording), action="record.download", target=str(recording.pk),
        room=recording.room.name, address=request.META.get("REMOTE_ADDR"), detail={"file": file},
    )


@require_safe
@cache_control(private=True)
def download(request: HttpRequest, pk: int) -> HttpResponse | StreamingHttpResponse:
    viewer, recording = visible_recording(request, pk)
    path = downloadable_file(recording, recording.file_path)
    if path is None:
        raise Http404
    download_audit(request, viewer, recording, "media")
    return ranged_file_response(request, path, filename=_download_filename(recording, path.suffix))


@require_safe
@cache_control(private=True)
def sidecar(request: HttpRequest, pk: int) -> HttpResponse | StreamingHttpResponse:
    """The timing sidecar (JSON) of a recording, for tools that align streams."""
    viewer, recording = visible_recording(request, pk)
    path = downloadable_file(recording, recording.sidecar_path)
    if path is None:
        raise Http404
    download_audit(request, viewer, recording, "sidecar")
    return ranged_file_response(request, path, filename=_download_filename(recording, f".sidecar{path.suffix}"))
