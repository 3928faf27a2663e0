"""Signed grants to one room's records: the link a participant gets, and the cookie it becomes.

A room's participants have no accounts: what lets them see their records is
a grant naming the room (its live id), the identity it was issued to and
when, signed with SECRET_KEY. The link carries it in the URL's fragment
(``/records/#access=<token>``), which browsers never send to a server, so
it never lands in an access log; the records page hands it to the server in
a POST body and gets it back as an HttpOnly cookie (``recording.views``).
Whether a grant is still honoured (room finalized long enough ago, links
revoked) is decided at use, in ``recording.access``.

Separate salts keep a link from being accepted as a cookie, and either
from being accepted anywhere else Django signs values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core import signing
from django.urls import reverse

RECORDS_LINK_SALT = "recording.links.room-records-grant"
RECORDS_COOKIE_SALT = "recording.links.room-records-cookie"
# The page keeps grants of this many rooms at most, the newest.
COOKIE_GRANTS_KEPT = 20


@dataclass(frozen=True)
class RecordsGrant:
    room_live_id: str
    identity: str
    # Microseconds since the epoch: a revocation (a database time, to the
    # microsecond) falls strictly after every link issued before it.
    issued_us: int

    def as_list(self) -> list[str | int]:
        return [self.room_live_id, self.identity, self.issued_us]

    @classmethod
    def from_list(cls, value: object) -> RecordsGrant | None:
        match value:
            case [str(room_live_id), str(identity), int(issued_us)] if room_live_id:
                return cls(room_live_id, identity, issued_us)
        return None


def records_grant_issue(*, room_live_id: str, identity: str) -> str:
    """A signed grant to the records of one room for one identity, issued now."""
    grant = RecordsGrant(room_live_id, identity, time.time_ns() // 1_000)
    return signing.dumps(grant.as_list(), salt=RECORDS_LINK_SALT)


def room_records_url(*, room_live_id: str, identity: str) -> str:
    """The relative URL of the records page with a grant in its fragment: ``/records/#access=<token>``."""
    return f"{reverse('recording:records')}#access={records_grant_issue(room_live_id=room_live_id, identity=identity)}"


def records_grant_from_token(token: str) -> RecordsGrant | None:
    """The grant a link's token carries, or None when it is forged or damaged."""
    try:
        return RecordsGrant.from_list(signing.loads(token, salt=RECORDS_LINK_SALT))
    except signing.BadSignature:
        return None


def records_grants_cookie(grants: list[RecordsGrant]) -> str:
    """The cookie value holding ``grants``: one per room and identity, the newest kept."""
    newest: dict[tuple[str, str], RecordsGrant] = {}
    for grant in sorted(grants, key=lambda grant: grant.issued_us):
        newest.pop((grant.room_live_id, grant.identity), None)
        newest[(grant.room_live_id, grant.identity)] = grant
    kept = list(newest.values())[-COOKIE_GRANTS_KEPT:]
    return signing.dumps([grant.as_list() for grant in kept], salt=RECORDS_COOKIE_SALT, compress=True)


def records_grants_from_cookie(value: str | None) -> list[RecordsGrant]:
    if not value:
        return []
    try:
        entries = signing.loads(value, salt=RECORDS_COOKIE_SALT)
    except signing.BadSignature:
        return []
    if not isinstance(entries, list):
        return []
    return [grant for grant in map(RecordsGrant.from_list, entries) if grant is not None]
