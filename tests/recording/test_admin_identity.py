""""Was this person recorded?" in the recordings admin: the identity filter
matches one identity exactly, its stream records and its rooms' mixes."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from recording.models import Recording
from rooms.models import Room

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/recording/recording/"


def record(room: Room, participant: str, stream: str) -> Recording:
    return Recording.objects.create(
        room=room, kind=Recording.Kind.STREAM, participant=participant, stream_live_id=stream,
        status=Recording.Status.READY,
    )


def listed_pks(html: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'name="_selected_action" value="(\d+)"', html)}


def test_the_identity_filter_answers_exactly_where_someone_was_recorded(admin_client: Client) -> None:
    weekly = Room.objects.create(name="weekly", live_id="live-weekly", status=Room.Status.FINALIZED)
    standup = Room.objects.create(name="standup", live_id="live-standup", status=Room.Status.FINALIZED)
    unrecorded = Room.objects.create(name="quiet", live_id="live-quiet", status=Room.Status.FINALIZED)
    alice_weekly = record(weekly, "alice", "a1")
    alice_screen = record(weekly, "alice", "a2")
    record(weekly, "bob", "b1")
    record(standup, "alice2", "x1")  # a longer name holding "alice": not her
    record(unrecorded, "bob", "b2")
    weekly_mix = Recording.objects.create(room=weekly, kind=Recording.Kind.ROOM, status=Recording.Status.READY)
    Recording.objects.create(room=standup, kind=Recording.Kind.ROOM, status=Recording.Status.READY)

    page = admin_client.get(CHANGELIST, {"identity": "alice"})
    assert page.status_code == 200
    assert listed_pks(page.content.decode()) == {alice_weekly.pk, alice_screen.pk, weekly_mix.pk}
    html = admin_client.get(CHANGELIST).content.decode()
    assert "By recorded identity" in html and "?identity=alice2" in html  # offered as choices
    assert listed_pks(admin_client.get(CHANGELIST, {"identity": "carol"}).content.decode()) == set()
