"""Access tokens for the pages: who gets one for which room, with what grants.

A logged-in user gets a token for the room their page opens, with their
username as the login. A guest gets one with an invitation
(``rooms.invites``) and the login they typed. Both are signed with the first
of ``API_KEYS`` and last ``PAGE_TOKEN_TTL_S``; the pages fetch a fresh one
before that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, AnonymousUser

from rooms import protocol
from rooms.access_tokens import VideoGrants, grants_from_names, token_mint, token_verify
from rooms.database import db_call
from rooms.invites import InviteError, invite_read, invite_use
from rooms.live.context import process_context

MODERATE_PERMISSION = "rooms.moderate_room"
PARTICIPANT_GRANTS = ("publish", "subscribe", "chat")
MODERATOR_GRANTS = (*PARTICIPANT_GRANTS, "record", "admin")

LOGIN_RULES = "Logins are 1-64 letters, digits, spaces and “-”, “_”, “.”, “@”."


class TokenRefused(Exception):
    """No token, with the HTTP status, a code and a sentence for the page."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PageToken:
    token: str
    identity: str
    grants: VideoGrants
    # Seconds since the epoch.
    expires_at: int

    def as_json(self) -> dict[str, Any]:
        """The answer of /api/token: grants as the token carries them, expiry in ms (as ESTABLISHED says)."""
        return {
            "token": self.token,
            "identity": self.identity,
            "grants": self.grants.claims(),
            "expires": self.expires_at * 1000,
        }


def user_is_moderator(user: AbstractUser | AnonymousUser) -> bool:
    """Staff, and users given the ``rooms.moderate_room`` permission, moderate every room from the pages."""
    return bool(user.is_authenticated and (user.is_staff or user.has_perm(MODERATE_PERMISSION)))


def _minted(identity: str, grants: VideoGrants, *, name: str = "") -> PageToken:
    if not settings.API_KEYS:
        raise TokenRefused(
            503, "tokens_unavailable", "This server has no API_KEYS to sign access tokens with: join with a login."
        )
    token = token_mint(identity=identity, grants=grants, ttl_s=settings.PAGE_TOKEN_TTL_S, name=name)
    return PageToken(token=token, identity=identity, grants=grants, expires_at=token_verify(token).expires_at)


def page_token_for_user(user: AbstractUser, *, room: str) -> PageToken:
    """A token for a logged-in user: their username is the login; moderators also get record and admin."""
    login = protocol.username_normalized(user.get_username())
    if login is None:
        raise TokenRefused(
            400, "invalid_login", f"Your user name “{user.get_username()}” cannot be a login. {LOGIN_RULES}"
        )
    names = MODERATOR_GRANTS if user_is_moderator(user) else PARTICIPANT_GRANTS
    return _minted(login, grants_from_names(list(names), room=room), name=user.get_full_name())


def _login_registered(login: str) -> bool:
    user_model = get_user_model()
    lookup = f"{user_model.USERNAME_FIELD}__iexact"
    return bool(user_model._default_manager.filter(**{lookup: login}).exists())


async def page_token_for_guest(invite: str, *, room: str, login: str, admitted_login: str | None) -> PageToken:
    """A token for a guest with an invitation.

    ``admitted_login`` is the login this browser was given for ``room``
    before: a token session takes over a login already in the room, so a
    guest may take over only their own (after a reload), never someone
    else's, and never a registered user's.
    """
    try:
        invitation = invite_read(invite, room=room)
    except InviteError as error:
        status = 400 if error.problem == "invite_invalid" else 403
        raise TokenRefused(status, error.problem, error.message) from None
    name = protocol.username_normalized(login)
    if name is None:
        raise TokenRefused(400, "invalid_login", LOGIN_RULES)
    if await db_call(_login_registered)(name):
        raise TokenRefused(
            409, "login_reserved", f"The login “{name}” belongs to a registered user: log in, or choose another login."
        )
    if name != admitted_login and name in await process_context().live_state.room_members(room):
        raise TokenRefused(409, "login_taken", f"The login “{name}” is already in room “{room}”. Choose another login.")
    try:
        await db_call(invite_use)(invitation, login=name)
    except InviteError as error:
        raise TokenRefused(403, error.problem, error.message) from None
    return _minted(name, grants_from_names(list(invitation.grants), room=room))
