"""Signed, expiring links to one room's records.

A room's participants have no accounts: what lets them see their records is
a token naming the room, signed with SECRET_KEY and valid for
RECORDS_LINK_MAX_AGE_S seconds. The salt keeps these tokens from being
accepted anywhere else Django signs values.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.urls import reverse

RECORDS_LINK_SALT = "recording.links.room-records"
DEFAULT_MAX_AGE_S = 7 * 24 * 3600


def room_records_token(room_live_id: str) -> str:
    return signing.TimestampSigner(salt=RECORDS_LINK_SALT).sign(room_live_id)


def room_records_url(room_live_id: str) -> str:
    """The relative URL of the records page for one room, e.g. ``/records/?room=<token>``."""
    return f"{reverse('recording:records')}?{urlencode({'room': room_records_token(room_live_id)})}"


def room_live_id_from_token(token: str) -> str | None:
    """The room's live_id a token was signed for, or None when it is bad or expired."""
    max_age = getattr(settings, "RECORDS_LINK_MAX_AGE_S", DEFAULT_MAX_AGE_S)
    try:
        return signing.TimestampSigner(salt=RECORDS_LINK_SALT).unsign(token, max_age=max_age)
    except signing.BadSignature:  # SignatureExpired is a subclass
        return None
