"""The database side of room actions."""

from __future__ import annotations

import pytest

from rooms import history
from rooms.models import Participant, Room, Stream, StreamMute
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


def test_a_stream_and_its_mutes_keep_the_moments_they_happened() -> None:
    history.participant_record_join(
        live_id="m", room_name="r", record=False, created=True, reactivated=False, login="a", session="sa"
    )
    history.stream_record_start(
        live_id="m", session="sa", login="a", stream_id="s1", kind="camera", record=False, codec="VP8",
        at_ms=1_795_000_000_250,
    )
    for _ in range(2):  # a write applied twice keeps one row
        history.stream_record_mute(stream_id="s1", mute_id="m1", audio=True, video=False, at_ms=1_795_000_001_500)
    history.stream_record_mute(stream_id="s1", mute_id="m2", audio=True, video=True, by="mod", at_ms=1_795_000_002_000)
    history.stream_record_mute(stream_id="unknown", mute_id="m3", audio=True, video=True)  # logged, not kept
    stream = Stream.objects.get(live_id="s1")
    assert stream.started_at.timestamp() == 1_795_000_000.25
    mutes = [(mute.mute_id, mute.audio, mute.video, mute.by, mute.at.timestamp()) for mute in stream.mutes.all()]
    assert mutes == [("m1", True, False, "", 1_795_000_001.5), ("m2", True, True, "mod", 1_795_000_002.0)]
    assert StreamMute.objects.count() == 2
