""""Was this person recorded?" in the recordings admin: the identity filter
matches one identity exactly, its stream records and its rooms' mixes; and
the audio stems' admin."""

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


def test_the_stems_admin_lists_them_read_only(admin_client: Client) -> None:
    from recording.models import RoomStems

    room = Room.objects.create(name="weekly", live_id="live-weekly", status=Room.Status.FINALIZED)
    stems = RoomStems.objects.create(
        room=room, status=RoomStems.Status.READY, size_bytes=2048, requested_by="alice",
        stems=[
            {"participant": "alice", "file": "alice.flac", "records": 1},
            {"participant": "bob", "file": "bob.flac", "records": 2},
        ],
    )
    html = admin_client.get("/admin/recording/roomstems/").content.decode()
    assert "alice, bob" in html and "/records/rooms/live-weekly/stems/" in html
    assert admin_client.get(f"/admin/recording/roomstems/{stems.pk}/change/").status_code == 200
    assert admin_client.get("/admin/recording/roomstems/add/").status_code == 403
