"""The records page: who sees which recordings, what a row shows, signed links."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.signing import TimestampSigner, b62_encode
from django.test import Client

from recording.links import RECORDS_LINK_SALT, room_live_id_from_token, room_records_token, room_records_url
from recording.models import Recording
from recording.templatetags.recording_format import duration_ms
from rooms.models import Participant, Room

pytestmark = pytest.mark.django_db


@pytest.fixture
def recordings_root(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_ROOT = tmp_path
    return tmp_path


def finished_room(name: str, *logins: str) -> Room:
    room = Room.objects.create(name=name, live_id=f"live-{name}", status=Room.Status.FINALIZED)
    for login in logins:
        Participant.objects.create(room=room, login=login, session=f"s-{login}")
    return room


def recording_of(room: Room, root: Path, *, status: str = Recording.Status.READY, **fields: object) -> Recording:
    """The room's mix; with ``participant=`` one of its stream records (a room has one mix, many streams)."""
    kind = Recording.Kind.STREAM if "participant" in fields else Recording.Kind.ROOM
    if kind == Recording.Kind.STREAM:
        fields.setdefault("stream_live_id", f"stream-{Recording.objects.count()}")
    recording = Recording.objects.create(room=room, kind=kind, status=status, **fields)
    if status in (Recording.Status.READY, Recording.Status.PARTIAL) and "file_path" not in fields:
        name = f"{room.name}-{recording.pk}.webm"
        (root / name).write_bytes(b"\x1aE\xdf\xa3 webm")
        recording.file_path = name
        recording.save()
    return recording


def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("operator", password="x", is_staff=True))
    return client


def rows(html: str) -> dict[int, str]:
    """Each table row's text by recording id."""
    return {
        int(pk): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
        for pk, row in re.findall(r'<tr id="recording-(\d+)">(.*?)</tr>', html, re.S)
    }


def token_from(url: str) -> str:
    return parse_qs(urlsplit(url).query)["room"][0]


def test_signed_link_names_its_room() -> None:
    url = room_records_url("a1b2c3")
    assert url.startswith("/records/?room=")
    assert room_live_id_from_token(token_from(url)) == "a1b2c3"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a1b2c3",
        room_records_token("a1b2c3").replace("a1b2c3", "a1b2c4"),
        # Signed with the same key for another purpose (another salt).
        TimestampSigner().sign("a1b2c3"),
    ],
)
def test_forged_links_name_no_room(token: str) -> None:
    assert room_live_id_from_token(token) is None


def signed_hours_ago(room_live_id: str, hours: float) -> str:
    class PastSigner(TimestampSigner):
        def timestamp(self) -> str:
            return b62_encode(int(time.time() - hours * 3600))

    return PastSigner(salt=RECORDS_LINK_SALT).sign(room_live_id)


def test_links_expire(settings) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDS_LINK_MAX_AGE_S = 2 * 3600
    assert room_live_id_from_token(signed_hours_ago("a1b2c3", 1)) == "a1b2c3"
    assert room_live_id_from_token(signed_hours_ago("a1b2c3", 3)) is None


def test_staff_see_every_room_newest_first(recordings_root: Path) -> None:
    older = recording_of(finished_room("weekly", "alice", "bob", "alice"), recordings_root)
    newer = recording_of(finished_room("retro", "carol"), recordings_root, status=Recording.Status.MIXING, progress=40)
    response = staff().get("/records/")
    assert response.status_code == 200
    html = response.content.decode()
    shown = rows(html)
    assert list(shown) == [newer.pk, older.pk]
    # Each participant once, in order of first join.
    assert shown[older.pk].startswith("weekly alice, bob room mix")
    assert "ready" in shown[older.pk] and "Download" in shown[older.pk]
    assert "mixing 40%" in shown[newer.pk] and "Download" not in shown[newer.pk]
    assert f'href="/records/{older.pk}/download/"' in html
    assert f'src="/records/{older.pk}/download/"' in html
    assert response["Cache-Control"] == "private"


def test_row_figures(recordings_root: Path) -> None:
    recording = recording_of(
        finished_room("weekly", "alice"), recordings_root, duration_ms=3_723_400, size_bytes=5 * 1024 * 1024
    )
    shown = rows(staff().get("/records/").content.decode())[recording.pk]
    assert "1:02:03" in shown and "5.0 MB" in shown
    started = recording.started_at.strftime("%Y-%m-%d %H:%M")
    assert f"{started} UTC" in shown


@pytest.mark.parametrize(
    ("milliseconds", "text"), [(None, "—"), (0, "0:00"), (59_600, "1:00"), (61_000, "1:01"), (3_600_000, "1:00:00")]
)
def test_duration_text(milliseconds: int | None, text: str) -> None:
    assert duration_ms(milliseconds) == text


def test_no_download_without_a_finished_file(recordings_root: Path) -> None:
    room = finished_room("weekly", "alice")
    failed = recording_of(room, recordings_root, status=Recording.Status.FAILED, failure_reason="no streams")
    missing = recording_of(room, recordings_root, file_path="gone.webm", participant="alice")
    partial = recording_of(room, recordings_root, status=Recording.Status.PARTIAL, participant="alice")
    shown = rows(staff().get("/records/").content.decode())
    assert "Download" not in shown[failed.pk] and "failed" in shown[failed.pk]
    assert "Download" not in shown[missing.pk]
    assert "Download" in shown[partial.pk] and "partial" in shown[partial.pk]


def test_a_signed_link_shows_its_room_only(recordings_root: Path) -> None:
    mine = recording_of(finished_room("weekly", "alice", "bob"), recordings_root)
    recording_of(finished_room("retro", "carol"), recordings_root)
    url = room_records_url(mine.room.live_id)
    response = Client().get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert list(rows(html)) == [mine.pk]
    assert "Records of room <q>weekly</q>" in html
    # Download and player links carry the token: the visitor has no session.
    assert f'href="/records/{mine.pk}/download/?room={url.split("room=")[1]}"' in html
    assert "carol" not in html and "retro" not in html


def test_a_signed_link_to_a_room_without_recordings(recordings_root: Path) -> None:
    recording_of(finished_room("retro", "carol"), recordings_root)
    quiet = finished_room("quiet", "dave")
    html = Client().get(room_records_url(quiet.live_id)).content.decode()
    assert rows(html) == {}
    assert "No recordings for this room yet." in html


def test_everyone_else_is_refused(recordings_root: Path) -> None:
    recording_of(finished_room("weekly", "alice"), recordings_root)
    anonymous = Client().get("/records/")
    assert anonymous.status_code == 403
    assert 'href="/admin/login/?next=%2Frecords%2F"' in anonymous.content.decode()
    assert "weekly" not in anonymous.content.decode()
    guest = Client()
    guest.force_login(User.objects.create_user("guest", password="x"))
    assert guest.get("/records/").status_code == 403


def test_an_expired_or_forged_link_is_refused(settings, recordings_root: Path) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDS_LINK_MAX_AGE_S = 3600
    recording = recording_of(finished_room("weekly", "alice"), recordings_root)
    for token in (signed_hours_ago(recording.room.live_id, 2), room_records_token(recording.room.live_id) + "x"):
        response = Client().get("/records/", {"room": token})
        assert response.status_code == 403
        assert "not valid, or it has expired" in response.content.decode()
        assert Client().get(f"/records/{recording.pk}/download/", {"room": token}).status_code == 404
    fresh = Client().get("/records/", {"room": signed_hours_ago(recording.room.live_id, 0.5)})
    assert list(rows(fresh.content.decode())) == [recording.pk]


def test_pages_keep_the_link(recordings_root: Path) -> None:
    room = finished_room("weekly", "alice")
    created = [
        recording_of(room, recordings_root, status=Recording.Status.FAILED, participant="alice") for _ in range(27)
    ]
    url = room_records_url(room.live_id)
    first = Client().get(url).content.decode()
    assert len(rows(first)) == 25
    next_link = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_link is not None
    second_url = next_link.group(1).replace("&amp;", "&")
    assert token_from(second_url) == token_from(url)
    second = Client().get(f"/records/{second_url}")
    assert list(rows(second.content.decode())) == [created[1].pk, created[0].pk]


def test_in_progress_pages_refresh_themselves(recordings_root: Path) -> None:
    room = finished_room("weekly", "alice")
    recording = recording_of(room, recordings_root, status=Recording.Status.PENDING_MIX)
    client = staff()
    assert 'data-refresh-seconds="5"' in client.get("/records/").content.decode()
    Recording.objects.filter(pk=recording.pk).update(status=Recording.Status.READY)
    assert "data-refresh-seconds" not in client.get("/records/").content.decode()

