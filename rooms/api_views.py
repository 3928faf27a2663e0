"""The server API: HTTP JSON for the application around the server (see
docs/api.md), in the manner of LiveKit's RoomService.

Each view is an edge: it checks the caller's grants (``rooms.api_auth``),
parses the body, calls a service and encodes the answer. Every refusal is
``{"error": code, "message": sentence}`` with its HTTP status.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from audit.services import audit_record
from rooms import moderation, protocol
from rooms.access_tokens import DEFAULT_TTL_S, grants_from_names, token_mint, token_verify
from rooms.api_auth import ApiCaller, ApiError, api_caller, api_json, bad_request, not_found
from rooms.database import db_call
from rooms.models import Participant, Room
from rooms.validation import BodyInvalid, json_body

# A token cannot be taken back before it expires (only its key can): the API
# mints none that lives longer than a year.
MAX_TOKEN_TTL_S = 366 * 24 * 3600

Body = TypeVar("Body", bound=BaseModel)
ApiView = Callable[..., Coroutine[Any, Any, JsonResponse]]
Endpoint = Callable[..., Coroutine[Any, Any, HttpResponse]]


def api_endpoint(*methods: str) -> Callable[[ApiView], Endpoint]:
    """An API view: answers only ``methods``, only to a verified bearer token
    (the view gets it as ``caller``), and turns ApiError into its JSON answer.

    CSRF protection is for requests a browser authenticates with a cookie;
    these are authenticated by a header a browser never adds by itself, and
    a request without it is refused before the view runs.
    """

    def decorate(view: ApiView) -> Endpoint:
        @csrf_exempt
        @wraps(view)
        async def endpoint(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ApiError(
                        405, "method_not_allowed", f"{request.path} answers {' and '.join(methods)}",
                        headers={"Allow": ", ".join(methods)},
                    )
                return await view(request, api_caller(request), **kwargs)
            except ApiError as error:
                return error.response()

        return endpoint

    return decorate


def body_parsed(request: HttpRequest, model: type[Body]) -> Body:
    """The JSON body as ``model``, or ApiError 400 naming what is wrong."""
    try:
        return json_body(request, model)
    except BodyInvalid as invalid:
        raise bad_request(invalid.problems) from None


def _room_checked(room: str) -> str:
    if not protocol.room_name_valid(room):
        raise bad_request(f"{room!r} is not a room name: 1-128 of A-Z a-z 0-9 - _ . not starting with '.' or '-'")
    return room


# --- Tokens -------------------------------------------------------------------


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identity: StrictStr
    # "": every room (only a caller who administers every room may mint that).
    room: StrictStr
    # Names as manage.py room_token --grant takes them.
    grants: list[StrictStr] = Field(default_factory=lambda: ["publish", "subscribe", "chat"])
    sources: list[StrictStr] = Field(default_factory=list)
    ttl_s: StrictInt = Field(default=DEFAULT_TTL_S, ge=1, le=MAX_TOKEN_TTL_S)
    name: StrictStr = ""
    metadata: StrictStr = ""


@api_endpoint("POST")
async def token_create(request: HttpRequest, caller: ApiCaller) -> JsonResponse:
    """Mint an access token for one identity and room, signed with the key
    that signed the caller's token, and write it to the audit trail."""
    wanted = body_parsed(request, TokenRequest)
    room = wanted.room if wanted.room == "" else _room_checked(wanted.room)
    caller.require_room_admin(room)
    identity = protocol.username_normalized(wanted.identity)
    if identity is None:
        raise bad_request(f"{wanted.identity!r} is not a login (1-64 letters, digits, spaces and - _ . @)")
    try:
        grants = grants_from_names(wanted.grants, room=room, sources=wanted.sources)
    except ValueError as error:
        raise bad_request(str(error)) from None
    token = token_mint(
        identity=identity, grants=grants, ttl_s=wanted.ttl_s, name=wanted.name, metadata=wanted.metadata,
        api_key=caller.claims.api_key, now=int(time.time()),
    )
    minted = token_verify(token)
    await db_call(audit_record)(
        actor=caller.actor, action="token.mint", room=room, target=identity, address=caller.address,
        detail={
            "caller": caller.identity, "grants": sorted(set(wanted.grants)), "sources": wanted.sources,
            "ttl_s": wanted.ttl_s, "token_id": minted.token_id,
        },
    )
    return api_json(
        {
            "token": token,
            "identity": identity,
            "room": room,
            "grants": grants.claims(),
            "expires": minted.expires_at * 1000,
        },
        status=201,
    )


# --- Rooms and participants ---------------------------------------------------------


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _open_room_joins(room: str) -> dict[str, datetime] | None:
    """When each login now in ``room`` joined it, or None if the room is not open."""
    row = Room.objects.exclude(status=Room.Status.FINALIZED).filter(name=room).first()
    if row is None:
        return None
    joins: dict[str, datetime] = {}
    for login, joined_at in Participant.objects.filter(room=row, left_at__isnull=True).values_list(
        "login", "joined_at"
    ):
        # Two open rows of one login (a replaced connection's closing as the
        # new one's opens): the later is the current join.
        joins[login] = max(joined_at, joins.get(login, joined_at))
    return joins


async def _open_room_joins_or_404(room: str) -> dict[str, datetime]:
    joins = await db_call(_open_room_joins)(room)
    if joins is None:
        raise not_found(f"there is no live room named {room!r}")
    return joins


@api_endpoint("GET")
async def rooms_list(request: HttpRequest, caller: ApiCaller) -> JsonResponse:
    """Every live room (active or idle)."""
    caller.require_every_room_admin()
    rooms = await moderation.rooms_live()
    return api_json(
        {
            "rooms": [
                {
                    "name": room.name,
                    "live_id": room.live_id,
                    "status": room.status,
                    "participants": room.participants,
                    "record": room.record,
                    "locked": room.locked,
                    "created": _ms(room.created_at),
                }
                for room in rooms
            ]
        }
    )


@api_endpoint("GET")
async def participants_list(request: HttpRequest, caller: ApiCaller, room: str) -> JsonResponse:
    """Everyone in a live room now, hidden participants included (marked)."""
    caller.require_room_admin(room)
    joins = await _open_room_joins_or_404(room)
    participants = await moderation.room_participants_live(room)
    return api_json(
        {
            "room": room,
            "participants": [
                {
                    "identity": participant.identity,
                    "display_name": participant.display_name,
                    "metadata": participant.metadata,
                    "hidden": participant.hidden,
                    "joined": _ms(joins[participant.identity]) if participant.identity in joins else None,
                    "streams": [stream.model_dump(mode="json") for stream in participant.streams],
                }
                for participant in participants
            ],
        }
    )


# --- Moderation -------------------------------------------------------------------


@api_endpoint("POST")
async def participant_kick(request: HttpRequest, caller: ApiCaller, room: str, identity: str) -> JsonResponse:
    """Remove a participant from a room (it may join again unless the room is locked)."""
    caller.require_room_admin(room)
    if not await moderation.participant_kick(room=room, login=identity, by=caller.actor, address=caller.address or ""):
        raise not_found(f"{identity!r} is not in room {room!r}")
    return api_json({"room": room, "identity": identity, "kicked": True})


class MuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # true: stop forwarding; false: forward again; absent: leave as it is.
    audio: StrictBool | None = None
    video: StrictBool | None = None


@api_endpoint("POST")
async def stream_mute(request: HttpRequest, caller: ApiCaller, room: str, stream: str) -> JsonResponse:
    """Mute or unmute a participant's stream for everyone: the server stops forwarding it."""
    caller.require_room_admin(room)
    wanted = body_parsed(request, MuteRequest)
    if wanted.audio is None and wanted.video is None:
        raise bad_request('say what to mute: {"audio": true|false, "video": true|false}, either or both')
    if not await moderation.stream_mute_by(
        room=room, stream=stream, audio=wanted.audio, video=wanted.video, by=caller.actor,
        address=caller.address or "",
    ):
        raise not_found(f"there is no stream {stream!r} in room {room!r}")
    for participant in await moderation.room_participants_live(room):
        for published in participant.streams:
            if published.id == stream:
                return api_json({"room": room, "stream": published.model_dump(mode="json")})
    # Unpublished in the meantime: muted it was, and now it is gone.
    raise not_found(f"stream {stream!r} ended while it was being muted")


@api_endpoint("POST")
async def room_end(request: HttpRequest, caller: ApiCaller, room: str) -> JsonResponse:
    """End the meeting for everyone in it."""
    caller.require_room_admin(room)
    if not await moderation.room_end(room=room, by=caller.actor, address=caller.address or ""):
        raise not_found(f"there is no live room named {room!r}")
    return api_json({"room": room, "ended": True})


class LockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locked: StrictBool


@api_endpoint("POST")
async def room_lock(request: HttpRequest, caller: ApiCaller, room: str) -> JsonResponse:
    """Lock a room (nobody else may join) or unlock it."""
    caller.require_room_admin(room)
    wanted = body_parsed(request, LockRequest)
    if not await moderation.room_lock_set(room=room, locked=wanted.locked, by=caller.actor,
                                          address=caller.address or ""):
        raise not_found(f"there is no live room named {room!r}")
    return api_json({"room": room, "locked": wanted.locked})
