"""Invite links: a signed, expiring invitation for guests to one room.

The invitation travels in the link (``?invite=...``), signed with the
server's ``SECRET_KEY``: its room, the grants a guest gets, its expiry and,
when its maker limited how many people it admits, the ``RoomInvite`` row
that counts them. A guest's page exchanges the invitation plus the login
the guest typed for an access token (``rooms.page_tokens``).
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F

from rooms.access_tokens import GRANT_NAMES
from rooms.models import RoomInvite, RoomInviteUse

SALT = "rooms.invite"
# What an invite may hand a guest: everything a page participant can do.
# "create" means nothing here and "hidden" guests would be spies.
INVITE_GRANTS = ("publish", "subscribe", "chat", "record", "admin")
DEFAULT_INVITE_GRANTS = ("publish", "subscribe", "chat")
MAX_USES_LIMIT = 10_000
WITHDRAWN = "This invite link was withdrawn. Ask for a new one."

InviteProblem = Literal["invite_invalid", "invite_expired", "invite_used_up", "invite_wrong_room"]


class InviteError(Exception):
    """An invitation that admits nobody (any more), and why, in words."""

    def __init__(self, problem: InviteProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


@dataclass(frozen=True)
class Invitation:
    room: str
    # GRANT_NAMES keys, e.g. ("publish", "subscribe", "chat").
    grants: tuple[str, ...]
    expires_at: int
    # The RoomInvite counting its uses; None when uses are not limited.
    invite_id: int | None = None


def invite_create(
    *,
    room: str,
    created_by: str,
    grants: tuple[str, ...] = DEFAULT_INVITE_GRANTS,
    max_uses: int | None = None,
    max_age_s: int | None = None,
    now: float | None = None,
) -> tuple[str, Invitation]:
    """A signed invitation to ``room`` and what it says. It admits guests for
    ``max_age_s`` (at most ``INVITE_MAX_AGE_S``) and, with ``max_uses``, that
    many different logins."""
    unknown = sorted(set(grants) - set(INVITE_GRANTS))
    if unknown:
        raise ValueError(f"an invite cannot grant {', '.join(unknown)}; it may grant {', '.join(INVITE_GRANTS)}")
    if max_uses is not None and not 1 <= max_uses <= MAX_USES_LIMIT:
        raise ValueError(f"max_uses must be 1-{MAX_USES_LIMIT}")
    longest: int = settings.INVITE_MAX_AGE_S
    age = longest if max_age_s is None else max_age_s
    if not 1 <= age <= longest:
        raise ValueError(f"an invite lasts 1-{longest} seconds (INVITE_MAX_AGE_S)")
    expires_at = int(time.time() if now is None else now) + age
    chosen = tuple(name for name in INVITE_GRANTS if name in grants)
    invite_id = None
    if max_uses is not None:
        invite_id = RoomInvite.objects.create(
            room=room,
            grants=list(chosen),
            max_uses=max_uses,
            created_by=created_by,
            expires_at=datetime.datetime.fromtimestamp(expires_at, tz=datetime.UTC),
        ).pk
    invitation = Invitation(room=room, grants=chosen, expires_at=expires_at, invite_id=invite_id)
    payload = {"r": room, "g": list(chosen), "e": expires_at, "i": invite_id}
    return signing.dumps(payload, salt=SALT, compress=True), invitation


def invite_read(value: str, *, room: str, now: float | None = None) -> Invitation:
    """The invitation in ``value`` if it admits guests to ``room`` now, else InviteError."""
    try:
        payload = signing.loads(value, salt=SALT)
        invitation = Invitation(
            room=str(payload["r"]),
            grants=tuple(name for name in payload["g"] if name in GRANT_NAMES),
            expires_at=int(payload["e"]),
            invite_id=None if payload["i"] is None else int(payload["i"]),
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise InviteError("invite_invalid", "This invite link is not valid: copy the whole link again.") from None
    if invitation.room != room:
        raise InviteError("invite_wrong_room", f"This invite link is for room “{invitation.room}”, not “{room}”.")
    if (time.time() if now is None else now) >= invitation.expires_at:
        raise InviteError("invite_expired", "This invite link has expired. Ask for a new one.")
    return invitation


def invite_use(invitation: Invitation, *, login: str) -> None:
    """Admit ``login`` with ``invitation``: free for invites without a use
    limit and for a login it admitted before; otherwise one use, or
    InviteError once every use is taken."""
    if invitation.invite_id is None:
        return
    try:
        with transaction.atomic():
            RoomInviteUse.objects.create(invite_id=invitation.invite_id, login=login)
            # Conditional, so two guests racing for the last use cannot both get it.
            counted = RoomInvite.objects.filter(pk=invitation.invite_id, uses__lt=F("max_uses")).update(
                uses=F("uses") + 1
            )
            if not counted:
                if not RoomInvite.objects.filter(pk=invitation.invite_id).exists():
                    raise InviteError("invite_invalid", WITHDRAWN)
                raise InviteError("invite_used_up", "This invite link has been used up. Ask for a new one.")
    except IntegrityError:
        # This login was admitted before (a reload), or the row is gone.
        if not RoomInviteUse.objects.filter(invite_id=invitation.invite_id, login=login).exists():
            raise InviteError("invite_invalid", WITHDRAWN) from None
