"""Who may see which recordings on the records pages.

Users with the ``recording.view_recording`` permission (given in the admin,
superusers have it) see every room. Anyone holding grants of rooms (the
cookie the records page gets for a room's link, see ``recording.links``)
sees those rooms only, without an account. Everyone else sees nothing.

A grant is honoured while its room exists, is not finalized or was
finalized less than RECORDS_LINK_MAX_AGE_S ago, and its links were not
revoked after the grant was issued.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from recording.links import RecordsGrant, records_grant_from_token, records_grants_from_cookie
from recording.models import Recording
from rooms.models import Room

RECORDS_COOKIE = "records_access"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
MICROSECOND = datetime.timedelta(microseconds=1)
VIEW_PERMISSION = "recording.view_recording"


class GrantRefusal(StrEnum):
    INVALID = "link_invalid"
    EXPIRED = "link_expired"
    REVOKED = "link_revoked"


def records_grant_refusal(grant: RecordsGrant, room: Room | None, *, now: datetime.datetime) -> GrantRefusal | None:
    """Why ``grant`` is no longer honoured for ``room`` (its live id's row), or None when it is."""
    if room is None:
        return GrantRefusal.INVALID
    revoked_at = room.records_links_revoked_at
    if revoked_at is not None and grant.issued_us <= (revoked_at - EPOCH) // MICROSECOND:
        return GrantRefusal.REVOKED
    max_age = datetime.timedelta(seconds=settings.RECORDS_LINK_MAX_AGE_S)
    if room.finalized_at is not None and now > room.finalized_at + max_age:
        return GrantRefusal.EXPIRED
    return None


def records_link_grant(token: str) -> RecordsGrant | GrantRefusal:
    """The grant a link's token carries when it is honoured now, else why it is not."""
    grant = records_grant_from_token(token)
    if grant is None:
        return GrantRefusal.INVALID
    room = Room.objects.filter(live_id=grant.room_live_id).first()
    return records_grant_refusal(grant, room, now=timezone.now()) or grant


def records_grants_honoured(grants: Iterable[RecordsGrant]) -> tuple[list[RecordsGrant], list[RecordsGrant]]:
    """The grants still honoured, and those that are not."""
    grants = list(grants)
    rooms = Room.objects.in_bulk([grant.room_live_id for grant in grants], field_name="live_id")
    now = timezone.now()
    honoured: list[RecordsGrant] = []
    refused: list[RecordsGrant] = []
    for grant in grants:
        refusal = records_grant_refusal(grant, rooms.get(grant.room_live_id), now=now)
        (refused if refusal else honoured).append(grant)
    return honoured, refused


@dataclass(frozen=True)
class RecordsViewer:
    # The Django user's name when the permission lets them see every room.
    username: str | None = None
    # The request's grants still honoured, and those no longer honoured.
    grants: tuple[RecordsGrant, ...] = ()
    refused: tuple[RecordsGrant, ...] = ()

    @property
    def every_room(self) -> bool:
        return self.username is not None

    @property
    def identities(self) -> dict[str, str]:
        """Room live id -> the identity its newest grant was issued to."""
        return {grant.room_live_id: grant.identity for grant in sorted(self.grants, key=lambda g: g.issued_us)}

    @property
    def may_see_something(self) -> bool:
        return self.every_room or bool(self.grants)

    def recordings(self) -> QuerySet[Recording]:
        recordings = Recording.objects.select_related("room", "stream")
        if not self.every_room:
            recordings = recordings.filter(room__live_id__in=list(self.identities))
        return recordings.order_by("-started_at", "-pk")

    def actor(self, recording: Recording) -> str:
        """Who sees ``recording``, for the audit trail: ``user:<name>``, else the grant's identity."""
        if self.username is not None:
            return f"user:{self.username}"
        return self.identities.get(recording.room.live_id, "")


def records_viewer(request: HttpRequest) -> RecordsViewer:
    """What the request may see: every room with the permission, else the rooms its grants name."""
    grants = records_grants_from_cookie(request.COOKIES.get(RECORDS_COOKIE))
    honoured, refused = records_grants_honoured(grants) if grants else ([], [])
    username = request.user.get_username() if request.user.has_perm(VIEW_PERMISSION) else None
    return RecordsViewer(username=username, grants=tuple(honoured), refused=tuple(refused))
