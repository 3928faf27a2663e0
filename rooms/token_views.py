"""What the pages ask the Django side for: an access token for the room they
open (``POST /api/token``) and, for moderators, an invite link
(``POST /api/invites``).

Both are for the pages only: a browser authenticates them with its session
cookie (a logged-in user) or with what it holds (an invitation, an access
token), so both are CSRF-protected and the pages send the CSRF header.
Every refusal is ``{"error": code, "message": sentence}`` with its HTTP
status; the sentence is what the page shows.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.http import HttpRequest, JsonResponse
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from audit.services import audit_record
from rooms import protocol
from rooms.access_tokens import AccessClaims, TokenError, token_verify
from rooms.database import db_call
from rooms.invites import DEFAULT_INVITE_GRANTS, invite_create
from rooms.page_tokens import TokenRefused, page_token_for_guest, page_token_for_user, user_is_moderator
from rooms.validation import BodyInvalid, json_body

# Session key: room -> the login this browser was admitted with as a guest.
GUEST_LOGINS = "rooms.guest_logins"

Body = TypeVar("Body", bound=BaseModel)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room: StrictStr
    invite: StrictStr | None = None
    login: StrictStr | None = None


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room: StrictStr
    grants: list[StrictStr] | None = None
    max_uses: StrictInt | None = None
    max_age_s: StrictInt | None = None


def _refusal(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": code, "message": message}, status=status, headers={"Cache-Control": "no-store"})


def _body(request: HttpRequest, model: type[Body]) -> Body:
    try:
        return json_body(request, model)
    except BodyInvalid as invalid:
        raise TokenRefused(400, "bad_request", invalid.problems) from None


def _room_checked(room: str) -> str:
    if not protocol.room_name_valid(room):
        raise TokenRefused(400, "invalid_room", f"“{room}” is not a valid room name.")
    return room


def _post_only(request: HttpRequest) -> None:
    if request.method != "POST":
        raise TokenRefused(405, "method_not_allowed", f"{request.path} answers POST")


async def token_exchange(request: HttpRequest) -> JsonResponse:
    """``POST /api/token`` ``{"room", "invite"?, "login"?}`` -> ``{"token", "identity", "grants", "expires"}``.

    With ``invite``: a guest's token, for ``login``. Without: the logged-in
    user's token.
    """
    try:
        _post_only(request)
        asked = _body(request, TokenRequest)
        room = _room_checked(asked.room)
        if asked.invite is not None:
            if not (asked.login or "").strip():
                raise TokenRefused(400, "login_required", "Enter a login to join.")
            admitted: dict[str, str] = dict(await request.session.aget(GUEST_LOGINS, {}))
            token = await page_token_for_guest(
                asked.invite, room=room, login=asked.login or "", admitted_login=admitted.get(room)
            )
            admitted[room] = token.identity
            await request.session.aset(GUEST_LOGINS, admitted)
        else:
            user = await request.auser()
            if not user.is_authenticated:
                raise TokenRefused(
                    401,
                    "not_logged_in",
                    "This room needs an invitation: open the invite link you were sent, or log in.",
                )
            token = await db_call(page_token_for_user)(user, room=room)
    except TokenRefused as refused:
        return _refusal(refused.status, refused.code, refused.message)
    return JsonResponse(token.as_json(), headers={"Cache-Control": "no-store"})


def _bearer_claims(request: HttpRequest) -> AccessClaims | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    try:
        return token_verify(value.strip())
    except TokenError as error:
        raise TokenRefused(401, error.problem, f"Your access token is not accepted: {error.message}.") from None


async def _invite_maker(request: HttpRequest, room: str) -> str:
    """Who makes the invite (an audit actor), or TokenRefused: a moderator
    logged in here, or a page holding a token with roomAdmin for ``room``."""
    user = await request.auser()
    if user.is_authenticated and await db_call(user_is_moderator)(user):
        return f"user:{user.get_username()}"
    claims = _bearer_claims(request)
    if claims is not None and claims.grants.room_admin and claims.grants.room in ("", room):
        return claims.identity
    if claims is None and not user.is_authenticated:
        raise TokenRefused(401, "not_logged_in", "Log in as a moderator to make invite links.")
    raise TokenRefused(403, "forbidden", f"Only a moderator of room “{room}” may make invite links for it.")


async def invite_make(request: HttpRequest) -> JsonResponse:
    """``POST /api/invites`` ``{"room", "grants"?, "max_uses"?, "max_age_s"?}`` -> ``{"invite", ...}``."""
    try:
        _post_only(request)
        asked = _body(request, InviteRequest)
        room = _room_checked(asked.room)
        maker = await _invite_maker(request, room)
        try:
            value, invitation = await db_call(invite_create)(
                room=room,
                created_by=maker,
                grants=tuple(asked.grants) if asked.grants is not None else DEFAULT_INVITE_GRANTS,
                max_uses=asked.max_uses,
                max_age_s=asked.max_age_s,
            )
        except ValueError as error:
            raise TokenRefused(400, "bad_request", str(error)) from None
        await db_call(audit_record)(
            actor=maker,
            action="invite.create",
            room=room,
            target=f"invite:{invitation.invite_id}" if invitation.invite_id else "",
            address=request.META.get("REMOTE_ADDR"),
            detail={"grants": list(invitation.grants), "max_uses": asked.max_uses, "expires_at": invitation.expires_at},
        )
    except TokenRefused as refused:
        return _refusal(refused.status, refused.code, refused.message)
    answer: dict[str, Any] = {
        "invite": value,
        "room": room,
        "grants": list(invitation.grants),
        "max_uses": asked.max_uses,
        "expires": invitation.expires_at * 1000,
    }
    return JsonResponse(answer, status=201, headers={"Cache-Control": "no-store"})
