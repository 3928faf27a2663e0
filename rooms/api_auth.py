"""Who calls the server API, and what they may do.

The application around the server authenticates as LiveKit's server SDKs
do: every request carries ``Authorization: Bearer <access token>``, a token
signed by one of ``API_KEYS`` whose ``video`` grants say what the caller may
do. ``roomAdmin`` for a room administers that room; ``roomAdmin`` with room
``""`` administers every room. The API reads no cookie, so a browser cannot
be made to call it on someone's behalf: that is why its views need no CSRF
token, and why a request without a bearer token is refused before anything
else is looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, JsonResponse

from rooms.access_tokens import AccessClaims, TokenError, token_verify

BEARER = "bearer"


def api_json(payload: dict[str, Any], *, status: int = 200) -> JsonResponse:
    """An answer of the API: UTF-8 JSON, non-ASCII text as itself (as the WebSocket protocol writes it)."""
    return JsonResponse(payload, status=status, json_dumps_params={"ensure_ascii": False})


class ApiError(Exception):
    """A refused API request: its HTTP status, a stable code and a sentence."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        response = api_json({"error": self.code, "message": self.message}, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def _unauthorized(code: str, message: str) -> ApiError:
    # RFC 6750: a 401 names the scheme, and why the token was not taken.
    challenge = 'Bearer realm="api"' if code == "token_required" else 'Bearer realm="api", error="invalid_token"'
    return ApiError(401, code, message, headers={"WWW-Authenticate": challenge})


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


@dataclass(frozen=True)
class ApiCaller:
    """A request's verified token, and where the request came from."""

    claims: AccessClaims
    address: str | None

    @property
    def actor(self) -> str:
        """Who acted, for the audit trail and for ``by`` in room events: the
        API key that signed the caller's token (the application, not a login)."""
        return f"key:{self.claims.api_key}"

    @property
    def identity(self) -> str:
        return self.claims.identity

    def administers(self, room: str) -> bool:
        grants = self.claims.grants
        return grants.room_admin and grants.room in ("", room)

    def require_room_admin(self, room: str) -> None:
        if not self.administers(room):
            raise forbidden(f"needs the roomAdmin grant for room {room!r} (or for every room, room \"\")")

    def require_every_room_admin(self) -> None:
        if not self.administers(""):
            raise forbidden('needs the roomAdmin grant for every room (room "")')


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None without one."""
    header: str = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != BEARER or not token.strip():
        return None
    return token.strip()


def api_caller(request: HttpRequest) -> ApiCaller:
    """The verified caller of an API request, or ApiError 401."""
    token = bearer_token(request)
    if token is None:
        raise _unauthorized("token_required", "send Authorization: Bearer <access token signed by an API key>")
    try:
        claims = token_verify(token)
    except TokenError as error:
        raise _unauthorized(error.problem, error.message) from None
    address: Any = request.META.get("REMOTE_ADDR")
    return ApiCaller(claims=claims, address=address if isinstance(address, str) else None)
