"""The HTTP edge of WHIP (RFC 9725) and WHEP: read the offer and the bearer,
call ``rooms.whip``, answer in the RFC's terms.

``POST /whip/<room>`` and ``POST /whep/<room>/<stream>`` take an SDP offer
and answer ``201 Created`` with the SDP answer, ``Location`` (the session's
resource) and ``ETag``; ``DELETE`` on the resource ends it. Trickle ICE and
ICE restarts are not offered: the answer carries every candidate, and
``PATCH`` is ``405``. Refusals are ``{"error": code, "message": sentence}``
with an HTTP status. A browser on another origin may call these
(``WHIP_CORS_ORIGINS``); the bearer, never a cookie, admits a request,
hence no CSRF token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rooms import protocol, whip
from rooms.api_auth import api_json, bearer_token
from rooms.headless import Role
from rooms.whip import WhipRefused

logger = logging.getLogger(__name__)

SDP = "application/sdp"
ENDPOINT_METHODS = ("POST", "OPTIONS")
RESOURCE_METHODS = ("DELETE", "OPTIONS")

# A refusal's HTTP status, by its code (the codes a WebSocket client gets in
# room.failed, stream.status and session.status, and the edge's own).
STATUS = {
    "bad_sdp": 400, "invalid_room": 400, "no_media": 400, "codec_not_supported": 400,
    "token_required": 401, "token_invalid": 401, "token_expired": 401, "token_not_yet_valid": 401,
    "whip_disabled": 403, "forbidden": 403, "room_locked": 403, "invalid_username": 403,
    "not_found": 404, "unknown_stream": 404,
    "method_not_allowed": 405,
    "login_taken": 409, "room_full": 409,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "limit": 503, "try_again": 503, "node_unavailable": 503, "node_stopped": 503, "node_failed": 503,
    "ended": 503, "ice_failed": 503, "unavailable": 503,
}
# Seconds a client should wait before trying again, by status.
RETRY_AFTER = {429: "1", 503: "2"}

# Redis unreachable (refused, reset, or silent past the client's timeout).
LIVE_STATE_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)

View = Callable[..., Coroutine[Any, Any, HttpResponse]]


def _refusal(error: WhipRefused, allow: tuple[str, ...]) -> HttpResponse:
    status = STATUS.get(error.code, 400)
    response = api_json({"error": error.code, "message": error.message}, status=status)
    if status == 401:
        # RFC 6750: a 401 names the scheme, and why the token was not taken.
        detail = "" if error.code == "token_required" else ', error="invalid_token"'
        response["WWW-Authenticate"] = f'Bearer realm="whip"{detail}'
    if status == 405:
        response["Allow"] = ", ".join(allow)
    if status in RETRY_AFTER:
        response["Retry-After"] = RETRY_AFTER[status]
    return response


def _cors(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    origins = settings.WHIP_CORS_ORIGINS
    origin = request.headers.get("Origin")
    if "*" in origins:
        response["Access-Control-Allow-Origin"] = "*"
    elif origin in origins:
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    response["Access-Control-Expose-Headers"] = "Location, ETag, Link, Accept-Post"
    return response


def _options(allow: tuple[str, ...]) -> HttpResponse:
    """CORS preflight, and what the resource takes (RFC 9725: Accept-Post)."""
    response = HttpResponse(status=200)
    response["Allow"] = ", ".join(allow)
    response["Access-Control-Allow-Methods"] = ", ".join(allow)
    response["Access-Control-Allow-Headers"] = "Authorization, Content-Type, If-Match"
    response["Access-Control-Max-Age"] = "600"
    if "POST" in allow:
        response["Accept-Post"] = SDP
    return response


def whip_edge(*allow: str) -> Callable[[View], View]:
    """A WHIP/WHEP view: CSRF-exempt, CORS on every answer, OPTIONS answered,
    other methods than ``allow`` refused 405, WhipRefused turned into its answer."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        async def edge(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            if request.method == "OPTIONS":
                return _cors(request, _options(allow))
            try:
                if request.method not in allow:
                    raise WhipRefused(
                        "method_not_allowed",
                        f"{request.path} answers {' and '.join(allow)}"
                        + (" (no trickle ICE or ICE restart: the answer has every candidate)"
                           if request.method == "PATCH" else ""),
                    )
                response = await view(request, **kwargs)
            except WhipRefused as error:
                response = _refusal(error, allow)
            except LIVE_STATE_UNREACHABLE:
                logger.warning("%s %s failed: the live state is unreachable", request.method, request.path,
                               exc_info=True)
                response = _refusal(WhipRefused("unavailable", "the server's live state is unreachable; try again"),
                                    allow)
            return _cors(request, response)

        return edge

    return decorate


def _offer(request: HttpRequest, role: Role) -> str:
    content_type = request.content_type or ""
    if content_type.lower() != SDP:
        raise WhipRefused("unsupported_media_type", f"the offer must be sent as Content-Type: {SDP}")
    try:
        sdp = request.body.decode()
    except UnicodeDecodeError:
        raise WhipRefused("bad_sdp", "the offer is not UTF-8 text") from None
    problem = whip.sdp_problem(sdp, role=role)
    if problem is not None:
        raise WhipRefused("bad_sdp", problem)
    return sdp


def _room_checked(room: str) -> str:
    if not protocol.room_name_valid(room):
        raise WhipRefused(
            "invalid_room", f"{room!r} is not a room name: 1-128 of A-Z a-z 0-9 - _ . not starting with '.' or '-'"
        )
    return room


def _client_address(request: HttpRequest) -> str:
    address = request.META.get("REMOTE_ADDR")
    return address if isinstance(address, str) else ""


def _created(request: HttpRequest, started: whip.Started, location: str) -> HttpResponse:
    response = HttpResponse(started.sdp, status=201, content_type=SDP)
    response["Location"] = request.build_absolute_uri(location)
    # Names this ICE session; a client would send it back in If-Match with a PATCH.
    response["ETag"] = f'"{started.stream}"'
    links = whip.ice_server_links(started.ice_servers)
    if links:
        response["Link"] = ", ".join(links)
    return response


@whip_edge(*ENDPOINT_METHODS)
async def whip_endpoint(request: HttpRequest, room: str) -> HttpResponse:
    room = _room_checked(room)
    who = whip.admission(bearer_token(request), login_prefix="whip")
    sdp = _offer(request, "publish")
    record = request.GET.get("record", "").lower() in ("1", "true", "yes")
    started = await whip.whip_publish(room=room, sdp=sdp, who=who, address=_client_address(request), record=record)
    return _created(request, started, reverse("whip:resource", args=[room, started.resource]))


@whip_edge(*RESOURCE_METHODS)
async def whip_resource(request: HttpRequest, room: str, resource: str) -> HttpResponse:
    await whip.whip_delete(room=room, resource=resource)
    return HttpResponse(status=200)


@whip_edge(*ENDPOINT_METHODS)
async def whep_endpoint(request: HttpRequest, room: str, stream: str) -> HttpResponse:
    room = _room_checked(room)
    who = whip.admission(bearer_token(request), login_prefix="whep")
    sdp = _offer(request, "play")
    started = await whip.whep_play(room=room, stream=stream, sdp=sdp, who=who, address=_client_address(request))
    return _created(request, started, reverse("whip:whep_resource", args=[room, stream, started.resource]))


@whip_edge(*RESOURCE_METHODS)
async def whep_resource(request: HttpRequest, room: str, stream: str, resource: str) -> HttpResponse:
    await whip.whep_delete(room=room, stream=stream, resource=resource)
    return HttpResponse(status=200)
