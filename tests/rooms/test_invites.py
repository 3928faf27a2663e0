"""Invitations: signed, expiring, for one room, with an optional count of logins admitted."""

from __future__ import annotations

import time

import pytest
from django.core import signing

from rooms.invites import SALT, InviteError, invite_create, invite_read, invite_use
from rooms.models import RoomInvite, RoomInviteUse

pytestmark = pytest.mark.django_db


def test_an_invitation_reads_back_what_it_was_made_with() -> None:
    value, made = invite_create(room="weekly", created_by="user:alice", grants=("chat", "publish"))
    read = invite_read(value, room="weekly")
    assert read == made
    # Grants come out in one order whatever order they were asked in.
    assert read.grants == ("publish", "chat")
    assert read.invite_id is None
    assert RoomInvite.objects.count() == 0  # no use limit, no row


def test_an_invitation_lasts_invite_max_age_unless_asked_for_less(settings) -> None:  # type: ignore[no-untyped-def]
    settings.INVITE_MAX_AGE_S = 3600
    _, default = invite_create(room="weekly", created_by="x", now=1_000_000)
    assert default.expires_at == 1_000_000 + 3600
    _, short = invite_create(room="weekly", created_by="x", max_age_s=60, now=1_000_000)
    assert short.expires_at == 1_000_060
    with pytest.raises(ValueError, match="1-3600 seconds"):
        invite_create(room="weekly", created_by="x", max_age_s=3601)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"grants": ("publish", "hidden")}, "cannot grant hidden"),
        ({"grants": ("create",)}, "cannot grant create"),
        ({"max_uses": 0}, "max_uses must be"),
        ({"max_uses": 10_001}, "max_uses must be"),
        ({"max_age_s": 0}, "seconds"),
    ],
)
def test_an_invitation_refuses_what_it_cannot_promise(options: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        invite_create(room="weekly", created_by="x", **options)  # type: ignore[arg-type]


def test_an_expired_invitation_admits_nobody() -> None:
    value, _ = invite_create(room="weekly", created_by="x", max_age_s=60, now=time.time() - 61)
    with pytest.raises(InviteError) as refused:
        invite_read(value, room="weekly")
    assert refused.value.problem == "invite_expired"
    assert refused.value.message == "This invite link has expired. Ask for a new one."


def test_an_invitation_admits_only_to_its_room() -> None:
    value, _ = invite_create(room="weekly", created_by="x")
    with pytest.raises(InviteError) as refused:
        invite_read(value, room="board")
    assert refused.value.problem == "invite_wrong_room"
    assert refused.value.message == "This invite link is for room “weekly”, not “board”."


@pytest.mark.parametrize(
    "value",
    [
        "not-an-invite",
        "",
        # Signed with another salt: a value the server signed for something else.
        signing.dumps({"r": "weekly", "g": ["admin"], "e": 2**40, "i": None}, salt="other"),
        # The right salt, but not an invitation's shape.
        signing.dumps({"room": "weekly"}, salt=SALT),
    ],
    # Signed values change with the clock: ids that do not, for parallel workers.
    ids=["not-an-invite", "empty", "another-salt", "not-an-invitation"],
)
def test_a_forged_or_damaged_invitation_is_invalid(value: str) -> None:
    with pytest.raises(InviteError) as refused:
        invite_read(value, room="weekly")
    assert refused.value.problem == "invite_invalid"


def test_a_tampered_invitation_is_invalid() -> None:
    value, _ = invite_create(room="weekly", created_by="x")
    body, _, signature = value.rpartition(":")
    forged = f"{body}:{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(InviteError) as refused:
        invite_read(forged, room="weekly")
    assert refused.value.problem == "invite_invalid"


def test_a_limited_invitation_counts_logins_not_exchanges() -> None:
    value, made = invite_create(room="weekly", created_by="user:alice", max_uses=2)
    assert made.invite_id is not None
    invitation = invite_read(value, room="weekly")
    invite_use(invitation, login="bob")
    invite_use(invitation, login="bob")  # bob reloads his page: no second use
    invite_use(invitation, login="carol")
    with pytest.raises(InviteError) as refused:
        invite_use(invitation, login="dave")
    assert refused.value.problem == "invite_used_up"
    assert refused.value.message == "This invite link has been used up. Ask for a new one."
    invite_use(invitation, login="carol")  # those admitted still are
    row = RoomInvite.objects.get(pk=made.invite_id)
    assert (row.uses, row.max_uses, row.room, row.grants) == (2, 2, "weekly", ["publish", "subscribe", "chat"])
    assert sorted(RoomInviteUse.objects.values_list("login", flat=True)) == ["bob", "carol"]


def test_a_withdrawn_limited_invitation_admits_nobody() -> None:
    value, made = invite_create(room="weekly", created_by="x", max_uses=5)
    RoomInvite.objects.filter(pk=made.invite_id).delete()
    with pytest.raises(InviteError) as refused:
        invite_use(invite_read(value, room="weekly"), login="bob")
    assert refused.value.problem == "invite_invalid"
    assert RoomInviteUse.objects.count() == 0
