"""The server API: HTTP JSON for the application around the server (see
docs/api.md), in the manner of LiveKit's RoomService.

Each view is an edge: it checks the caller's grants (``rooms.api_auth``),
parses the body, calls a service and encodes the answer. Every refusal is
``{"error": code, "message": sentence}`` with its HTTP status.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from audit.services import audit_record
from rooms import protocol
from rooms.access_tokens import DEFAULT_TTL_S, grants_from_names, token_mint, token_verify
from rooms.api_auth import ApiCaller, ApiError, api_caller, bad_request
from rooms.database import db_call

# A year: longer-lived tokens are a mistake, and would not fit every JWT library's integers.
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
        return model.model_validate_json(request.body or b"{}")
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg']}"
            for item in error.errors(include_url=False)
        )
        raise bad_request(problems) from None


def _room_checked(room: str) -> str:
    if not protocol.room_name_valid(room):
        raise bad_request(f"{room!r} is not a room name (letters, digits, _ . -; not starting with .)")
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
    return JsonResponse(
        {
            "token": token,
            "identity": identity,
            "room": room,
            "grants": grants.claims(),
            "expires": minted.expires_at * 1000,
        },
        status=201,
    )
