"""Proof that whoever exchanges a records link is the identity it was issued to.

With ``ROOM_AUTH=token`` the server knows identities, so a link is honoured
only with a proof of its identity: the access token of that identity's
meeting page (``Authorization: Bearer``, for the link's room or with
``roomAdmin`` for every room), or a login to this site under that name.
Users with the view permission see every room anyway. Anyone else holding
the link (forwarded, copied, seen over a shoulder) is refused.

With ``ROOM_AUTH=open`` nobody's identity is proven anywhere (a login is
whatever a client types), so a link is a bearer link: whoever holds it sees
the room's records.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from recording.access import VIEW_PERMISSION
from recording.links import RecordsGrant
from rooms.access_tokens import AccessClaims, TokenError, token_verify
from rooms.api_auth import bearer_token
from rooms.models import Room
from rooms.protocol import username_normalized

LINK_IDENTITY = "link_identity"


def _identity_advice(identity: str) -> str:
    return f"open it from {identity}'s meeting page, or log in as {identity}."


def _token_room_refusal(claims: AccessClaims, grant: RecordsGrant) -> str | None:
    """Why a token of the grant's identity does not prove it for the grant's room, or None when it does."""
    grants = claims.grants
    if grants.room_admin and grants.room == "":
        return None
    room = Room.objects.filter(live_id=grant.room_live_id).values_list("name", flat=True).first()
    if room is not None and grants.room == room:
        return None
    return (
        f"The access token sent with this link is for room “{grants.room}”, not “{room}”. "
        f"This link was issued to {grant.identity}: {_identity_advice(grant.identity)}"
    )


def records_link_identity_refusal(request: HttpRequest, grant: RecordsGrant) -> str | None:
    """Why ``request`` does not prove it is ``grant``'s identity (a sentence to show), or None when it
    does, or need not (``ROOM_AUTH=open``, or a user who may see every room)."""
    if settings.ROOM_AUTH != "token":
        return None
    user = request.user
    if user.has_perm(VIEW_PERMISSION):
        return None
    identity = grant.identity
    # Both sides as rooms compares logins: NFC, trimmed.
    user_identity = username_normalized(user.get_username()) if user.is_authenticated else None
    if user_identity is not None and user_identity == username_normalized(identity):
        return None
    others = [user_identity] if user_identity is not None else []
    token = bearer_token(request)
    if token is not None:
        try:
            claims = token_verify(token)
        except TokenError as error:
            return (
                f"The access token sent with this link is not accepted: {error.message}. "
                f"This link was issued to {identity}: {_identity_advice(identity)}"
            )
        token_identity = username_normalized(claims.identity)
        if token_identity is not None and token_identity == username_normalized(identity):
            return _token_room_refusal(claims, grant)
        others.insert(0, token_identity or claims.identity)
    if not others:
        return f"This link was issued to {identity}: {_identity_advice(identity)}"
    proven = " or ".join(dict.fromkeys(others))
    return f"This link was issued to {identity}, not to {proven}: {_identity_advice(identity)}"
