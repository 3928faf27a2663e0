"""The database side of room actions."""

from __future__ import annotations

import pytest

from rooms import history
from rooms.models import Participant, Room
from rooms.signals import room_finalized

pytestmark = pytest.mark.django_db(transaction=True)


def test_creator_recording_after_another_process_keeps_the_live_row() -> None:
    # Process B recorded a joiner of the new room before its creator on A did.
    history.participant_record_join(
        live_id="new", room_name="r", record=False, created=False, reactivated=False, login="b", session="sb"
    )
    history.participant_record_join(
        live_id="new", room_name="r", record=False, created=True, reactivated=False, login="a", session="sa"
    )
    room = Room.objects.get(live_id="new")
    assert room.status == Room.Status.ACTIVE
    assert set(Participant.objects.filter(room=room, left_at__isnull=True).values_list("login", flat=True)) == {
        "a",
        "b",
    }


def test_a_new_room_closes_an_open_row_left_from_lost_state() -> None:
    Room.objects.create(name="r", live_id="lost")
    history.participant_record_join(
        live_id="fresh", room_name="r", record=False, created=True, reactivated=False, login="a", session="sa"
    )
    assert Room.objects.get(live_id="lost").status == Room.Status.FINALIZED
    assert Room.objects.get(live_id="fresh").status == Room.Status.ACTIVE


def test_finalize_is_exactly_once() -> None:
    fired: list[str] = []

    def receiver(sender, room, **kwargs):  # type: ignore[no-untyped-def]
        fired.append(room.live_id)

    room_finalized.connect(receiver)
    try:
        Room.objects.create(name="r", live_id="x")
        assert history.room_finalize(live_id="x", name="r", record=False) is True
        assert history.room_finalize(live_id="x", name="r", record=False) is False
    finally:
        room_finalized.disconnect(receiver)
    assert fired == ["x"]
