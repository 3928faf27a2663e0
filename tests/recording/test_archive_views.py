"""A room's archive page and its WebVTT chat: what is played and where each entry sits; who may see them."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from django.test import Client

from audit.models import AuditEntry
from recording.models import Recording
from rooms.models import Room, Stream
from tests.recording.archived_room import (
    archived_room,
    joined,
    muted,
    published,
    room_mix,
    said,
    stream_record,
)
from tests.recording.records_access import operator_client, visitor_with_link
from tests.recording.vtt import vtt_parse

pytestmark = pytest.mark.django_db

SECRET = "the private one: never shown"


@pytest.fixture
def recordings_root(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def weekly(recordings_root: Path) -> Room:
    """alice publishes from 2 s, bob from 5 s (his record padded to 2 s); the mix starts at 2 s."""
    room = archived_room("weekly")
    alice, bob = joined(room, "alice", 0, 40_000), joined(room, "bob", 1_000, 30_000)
    camera = published(alice, 2_000, 39_000)
    bob_camera = published(bob, 5_000, 29_000)
    muted(camera, 12_000, audio=True, video=False)
    said(room, "alice", "early bird", 1_500)
    said(room, "bob", "Привет <b>all</b> --> 👋", 7_250)
    said(room, "alice", SECRET, 8_000, to=["bob"])
    said(room, "alice", "你好\nsecond line", 9_000)
    stream_record(room, recordings_root, camera, started_ms=2_000, duration_ms=37_000)
    stream_record(room, recordings_root, bob_camera, started_ms=2_000, duration_ms=27_000, padded_ms=3_000)
    room_mix(room, recordings_root, started_ms=2_000, duration_ms=37_000)
    return room


def page_entries(content: str) -> list[tuple[float, str]]:
    """Each timeline entry's moment (data-at) and its visible text."""
    found = re.findall(r'<li class="entry[^"]*" data-at="(-?[\d.]+)"[^>]*>(.*?)</li>', content, re.S)
    return [(float(at), html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", body))).strip()) for at, body in found]


def test_the_page_plays_the_mix_with_the_timeline_on_its_clock(weekly: Room) -> None:
    response = operator_client().get(f"/records/rooms/{weekly.live_id}/")
    assert response.status_code == 200
    content = html.unescape(response.content.decode())
    mix = Recording.objects.get(room=weekly, kind=Recording.Kind.ROOM)
    assert f'preload="metadata" src="/records/{mix.pk}/download/" data-offset="0.000"' in content
    assert f'<track kind="subtitles" srclang="und" label="Chat" src="/records/{mix.pk}/subtitles.vtt">' in content
    assert "Playing the room's mix" in content and "2 other records can be played instead" in content
    # 0 is the mix's start, 2 s after alice joined.
    assert page_entries(response.content.decode()) == [
        (-2.0, "-0:02 alice joined"),
        (-1.0, "-0:01 bob joined"),
        (-0.5, "-0:00 alice: early bird"),
        (0.0, "0:00 alice turned the camera on"),
        (3.0, "0:03 bob turned the camera on"),
        (5.25, "0:05 bob: Привет <b>all</b> --> 👋"),
        (7.0, "0:07 alice: 你好 second line"),
        (10.0, "0:10 alice muted the microphone"),
        (27.0, "0:27 bob turned the camera off"),
        (28.0, "0:28 bob left"),
        (37.0, "0:37 alice turned the camera off"),
        (38.0, "0:38 alice left"),
    ]
    assert "&lt;b&gt;all&lt;/b&gt;" in response.content.decode()  # escaped, never markup
    assert SECRET not in content


def test_the_other_records_are_offered_at_their_place_on_the_room_clock(weekly: Room) -> None:
    content = operator_client().get(f"/records/rooms/{weekly.live_id}/").content.decode()
    options = re.findall(
        r'<option value="\d+" data-src="([^"]+)" data-subtitles="[^"]+" data-offset="([-\d.]+)"', content
    )
    records = {record.participant: record.pk for record in Recording.objects.filter(kind=Recording.Kind.STREAM)}
    mix = Recording.objects.get(room=weekly, kind=Recording.Kind.ROOM)
    # Each record's file time 0 on the room's clock: bob's padded file starts where alice's does.
    assert options == [
        (f"/records/{mix.pk}/download/", "0.000"),
        (f"/records/{records['alice']}/download/", "0.000"),
        (f"/records/{records['bob']}/download/", "0.000"),
    ]


def test_without_a_mix_the_longest_stream_record_plays_and_the_page_says_why(recordings_root: Path) -> None:
    room = archived_room("nomix")
    alice, bob = joined(room, "alice", 0), joined(room, "bob", 0)
    stream_record(room, recordings_root, published(alice, 4_000), started_ms=4_000, duration_ms=5_000)
    stream_record(
        room, recordings_root, published(bob, 1_000, kind=Stream.Kind.SCREEN), started_ms=1_000, duration_ms=20_000
    )
    room_mix(room, recordings_root, started_ms=None, duration_ms=0, status=Recording.Status.FAILED)
    content = html.unescape(operator_client().get(f"/records/rooms/{room.live_id}/").content.decode())
    assert "This room's mix failed: playing bob's screen record, the longest of its stream records." in content
    bob_record = Recording.objects.get(participant="bob")
    assert f'src="/records/{bob_record.pk}/download/" data-offset="0.000"' in content
    assert re.search(r'data-offset="3\.000"[^>]*>alice\'s camera record \(0:05\)', content)


def test_a_room_without_records_shows_its_timeline_alone(recordings_root: Path) -> None:
    room = archived_room("unrecorded", record=False)
    joined(room, "alice", 0, 5_000)
    content = operator_client().get(f"/records/rooms/{room.live_id}/").content.decode()
    assert "<video" not in content and "Nothing of this room was recorded" in content
    # On the room's own clock, from its creation (1 s before alice joined).
    assert page_entries(content) == [(1.0, "0:01 alice joined"), (6.0, "0:06 alice left")]


def test_the_subtitles_are_the_public_chat_on_the_recording_clock(weekly: Room) -> None:
    mix = Recording.objects.get(room=weekly, kind=Recording.Kind.ROOM)
    response = operator_client("op").get(f"/records/{mix.pk}/subtitles.vtt")
    assert response.status_code == 200 and response["Content-Type"] == "text/vtt; charset=utf-8"
    cues = [(cue.start_ms, cue.end_ms, cue.text) for cue in vtt_parse(response.content.decode("utf-8"))]
    assert cues == [
        (0, 3_500, "alice: early bird"),  # sent 0.5 s before the mix starts
        (5_250, 7_000, "bob: Привет <b>all</b> --> 👋"),
        (7_000, 11_000, "alice: 你好\nsecond line"),
    ]
    assert SECRET.encode() not in response.content
    audited = AuditEntry.objects.filter(action="record.download", actor="user:op", detail={"file": "subtitles"})
    assert audited.count() == 1
    # A stream record's subtitles run on its own file's clock.
    bob_record = Recording.objects.get(participant="bob")
    bob_cues = vtt_parse(operator_client("op2").get(f"/records/{bob_record.pk}/subtitles.vtt").content.decode())
    assert [cue.start_ms for cue in bob_cues] == [0, 5_250, 7_000]


def test_a_mix_made_before_its_start_was_kept_finds_it_in_the_sidecars(recordings_root: Path) -> None:
    room = archived_room("oldmix")
    alice = joined(room, "alice", 0)
    stream_record(room, recordings_root, published(alice, 3_000), started_ms=1_000, duration_ms=9_000, padded_ms=2_000)
    mix = room_mix(room, recordings_root, started_ms=None, duration_ms=7_000)
    said(room, "alice", "hi", 4_000)
    cues = vtt_parse(operator_client().get(f"/records/{mix.pk}/subtitles.vtt").content.decode())
    assert [(cue.start_ms, cue.text) for cue in cues] == [(1_000, "alice: hi")]


def test_who_may_see_the_page_and_the_subtitles(weekly: Room, recordings_root: Path) -> None:
    other = archived_room("other")
    mix = Recording.objects.get(room=weekly, kind=Recording.Kind.ROOM)
    page, vtt = f"/records/rooms/{weekly.live_id}/", f"/records/{mix.pk}/subtitles.vtt"

    participant = visitor_with_link(weekly.live_id, "alice")
    assert participant.get(page).status_code == 200
    assert participant.get(vtt).status_code == 200

    # Someone with a link to another room, and nobody at all.
    stranger = visitor_with_link(other.live_id, "mallory")
    assert stranger.get(page).status_code == 404
    assert stranger.get(vtt).status_code == 404
    anonymous = Client()
    refused = anonymous.get(page)
    assert refused.status_code == 403 and "/login/?next=/records/" in refused.content.decode()
    assert anonymous.get(vtt).status_code == 404
    for response in (stranger.get(page), refused):
        assert b"early bird" not in response.content

    # A room still open has no archive page yet; an unknown id none at all.
    Room.objects.filter(pk=other.pk).update(status=Room.Status.ACTIVE, finalized_at=None)
    assert operator_client().get(f"/records/rooms/{other.live_id}/").status_code == 404
    assert operator_client("op2").get("/records/rooms/no-such-room/").status_code == 404


def test_the_records_list_links_each_finalized_room_to_its_page(weekly: Room) -> None:
    content = visitor_with_link(weekly.live_id, "alice").get("/records/").content.decode()
    assert f'<a href="/records/rooms/{weekly.live_id}/" id="room-archive-link">' in content
    assert content.count(f'class="room-archive" href="/records/rooms/{weekly.live_id}/"') == 3


def test_a_mix_whose_file_was_deleted_gives_way_to_the_stream_records(weekly: Room, recordings_root: Path) -> None:
    mix = Recording.objects.get(room=weekly, kind=Recording.Kind.ROOM)
    (recordings_root / mix.file_path).unlink()
    content = html.unescape(operator_client().get(f"/records/rooms/{weekly.live_id}/").content.decode())
    assert "This room's mix has no file any more: playing alice's camera record, the longest" in content
    assert f"/records/{mix.pk}/download/" not in content
