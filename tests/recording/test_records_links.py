"""Who sees which records: links bound to a room and an identity, expiring after the room ends,
revocable; the view permission; the audit trail of downloads, deletions and revocations."""

from __future__ import annotations

import base64
import datetime
import json
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core import signing
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry
from recording.links import (
    RECORDS_LINK_SALT,
    RecordsGrant,
    records_grant_from_token,
    records_grants_cookie,
    room_records_url,
)
from recording.models import Recording
from rooms.models import Participant, Room
from rooms.signals import room_records_url as room_records_url_signal
from tests.recording.records_access import (
    link_opened,
    link_token,
    operator_client,
    user_with_view_permission,
    visitor_with_link,
)

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


@pytest.fixture
def recordings_root(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_ROOT = tmp_path
    return tmp_path


def room_named(name: str, *logins: str, finalized_ago: datetime.timedelta | None = None) -> Room:
    """A room; finalized ``finalized_ago`` before now, else still open."""
    room = Room.objects.create(name=name, live_id=f"live-{name}")
    if finalized_ago is not None:
        Room.objects.filter(pk=room.pk).update(
            status=Room.Status.FINALIZED, finalized_at=timezone.now() - finalized_ago
        )
        room.refresh_from_db()
    for login in logins:
        Participant.objects.create(room=room, login=login, session=f"s-{login}")
    return room


def mix_of(room: Room, root: Path) -> Recording:
    (root / f"{room.name}.webm").write_bytes(b"\x1aE\xdf\xa3" + bytes(range(256)) * 8)
    (root / f"{room.name}.json").write_bytes(b'{"streams": []}')
    return Recording.objects.create(
        room=room, kind=Recording.Kind.ROOM, status=Recording.Status.READY,
        file_path=f"{room.name}.webm", sidecar_path=f"{room.name}.json",
    )


def shown_recordings(client: Client) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="recording-(\d+)">', client.get("/records/").content.decode())]


def download(client: Client, recording: Recording, **headers: str) -> int:
    return client.get(f"/records/{recording.pk}/download/", headers=headers).status_code


def link_issued_at(room: Room, identity: str, when: datetime.datetime) -> str:
    """A link as the server would have issued it at ``when``."""
    issued_us = int(when.timestamp() * 1_000_000)
    token = signing.dumps(RecordsGrant(room.live_id, identity, issued_us).as_list(), salt=RECORDS_LINK_SALT)
    return f"/records/#access={token}"


# --- the link ---------------------------------------------------------------------------------------------------------


def test_a_link_carries_its_room_and_identity_in_the_fragment() -> None:
    url = room_records_url(room_live_id="a1b2c3", identity="alice")
    assert url.startswith("/records/#access=")
    assert "?" not in url  # nothing of it in the part of a URL that is sent
    grant = records_grant_from_token(link_token(url))
    assert grant is not None and (grant.room_live_id, grant.identity) == ("a1b2c3", "alice")
    assert abs(grant.issued_us / 1e6 - timezone.now().timestamp()) < 5


def test_the_rooms_signal_gets_a_link_for_the_identity() -> None:
    """rooms asks for the link of a session allowed the records; recording binds it to that identity."""
    answers = room_records_url_signal.send(sender=Room, room_live_id="a1b2c3", identity="bob")
    urls = [url for _, url in answers if isinstance(url, str)]
    assert len(urls) == 1
    grant = records_grant_from_token(link_token(urls[0]))
    assert grant is not None and (grant.room_live_id, grant.identity) == ("a1b2c3", "bob")


def _with_identity(token: str, identity: str) -> str:
    """The token with another identity in its payload and the original signature."""
    payload, _, rest = token.partition(":")
    values = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    values[1] = identity
    forged = base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{forged}:{rest}"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a1b2c3",
        _with_identity(link_token(room_records_url(room_live_id="live-weekly", identity="alice")), "mallory"),
        # Signed with the same key for another purpose (another salt).
        signing.dumps(["live-weekly", "alice", 1], salt="another"),
        # The cookie's value is not a link.
        records_grants_cookie([RecordsGrant("live-weekly", "alice", 1)]),
    ],
    # The signed values change with the clock: ids that do not, so parallel
    # workers collect the same tests.
    ids=["empty", "not-signed", "identity-swapped", "another-salt", "the-cookie"],
)
def test_forged_links_carry_no_grant(token: str) -> None:
    assert records_grant_from_token(token) is None
    room_named("weekly", "alice")
    client, status = link_opened(f"/records/#access={token}")
    assert status == 403
    assert "records_access" not in client.cookies


def test_the_identity_cannot_be_changed() -> None:
    """The forged identity above is refused; the genuine link names alice."""
    room = room_named("weekly", "alice")
    url = room_records_url(room_live_id=room.live_id, identity="alice")
    _, status = link_opened(f"/records/#access={_with_identity(link_token(url), 'mallory')}")
    assert status == 403
    visitor = visitor_with_link(room.live_id, "alice")
    assert '<strong class="identity">alice</strong>' in visitor.get("/records/").content.decode()


# --- the exchange for a cookie ---------------------------------------------------------------------------------------


def test_the_cookie_is_http_only_strict_and_kept_to_the_records_pages() -> None:
    room = room_named("weekly", "alice")
    client, status = link_opened(room_records_url(room_live_id=room.live_id, identity="alice"))
    assert status == 204
    cookie = client.cookies["records_access"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/records/"
    assert int(cookie["max-age"]) == 7 * 24 * 3600


def test_the_exchange_takes_only_a_post_with_the_csrf_token() -> None:
    room = room_named("weekly", "alice")
    token = link_token(room_records_url(room_live_id=room.live_id, identity="alice"))
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/records/access/", {"access": token}).status_code == 403
    assert "records_access" not in strict.cookies
    assert strict.get("/records/access/", {"access": token}).status_code == 405
    # With the token of the page that holds the form, as records.js posts it.
    page = strict.get("/records/").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert csrf is not None
    response = strict.post("/records/access/", {"access": token, "csrfmiddlewaretoken": csrf.group(1)})
    assert response.status_code == 204
    assert "records_access" in strict.cookies


def test_the_refusal_says_why() -> None:
    room = room_named("weekly", "alice", finalized_ago=30 * DAY)
    client = Client()
    expired = client.post("/records/access/", {"access": link_token(link_issued_at(room, "alice", timezone.now()))})
    assert expired.status_code == 403
    assert expired.json()["error"] == "link_expired"
    assert "expired" in expired.json()["message"]
    invalid = client.post("/records/access/", {"access": "nonsense"})
    assert invalid.json()["error"] == "link_invalid"
    unknown_room = client.post(
        "/records/access/", {"access": link_token(room_records_url(room_live_id="never-was", identity="alice"))}
    )
    assert unknown_room.json()["error"] == "link_invalid"


# --- what a link shows ------------------------------------------------------------------------------------------------


def test_a_link_shows_its_room_only(recordings_root: Path) -> None:
    weekly = room_named("weekly", "alice", "bob", finalized_ago=DAY)
    retro = room_named("retro", "carol", finalized_ago=DAY)
    mine, theirs = mix_of(weekly, recordings_root), mix_of(retro, recordings_root)
    visitor = visitor_with_link(weekly.live_id, "alice")
    response = visitor.get("/records/")
    html = response.content.decode()
    assert response.status_code == 200
    assert shown_recordings(visitor) == [mine.pk]
    assert "Records of room <q>weekly</q>" in html
    # Plain download links: the cookie goes with them, nothing in the URL.
    assert f'href="/records/{mine.pk}/download/"' in html
    assert "carol" not in html and "retro" not in html
    assert download(visitor, mine) == 200
    # A link of another room cannot see this one, not even whether it exists.
    assert download(visitor, theirs) == 404
    assert visitor.get(f"/records/{theirs.pk}/sidecar/").status_code == 404
    assert download(visitor_with_link(retro.live_id, "alice"), mine) == 404


def test_links_of_several_rooms_show_each_room(recordings_root: Path) -> None:
    weekly, retro = room_named("weekly", "alice"), room_named("retro", "alice")
    room_named("other", "zoe")
    recordings = [mix_of(weekly, recordings_root), mix_of(retro, recordings_root)]
    visitor = visitor_with_link(retro.live_id, "alice", visitor_with_link(weekly.live_id, "alice"))
    assert sorted(shown_recordings(visitor)) == sorted(recording.pk for recording in recordings)
    html = visitor.get("/records/").content.decode()
    assert "Records of your rooms" in html and "other" not in html


def test_nobody_else_sees_anything(recordings_root: Path) -> None:
    recording = mix_of(room_named("weekly", "alice"), recordings_root)
    anonymous = Client().get("/records/")
    assert anonymous.status_code == 403
    assert 'href="/login/?next=%2Frecords%2F"' in anonymous.content.decode()
    assert "weekly" not in anonymous.content.decode()
    assert download(Client(), recording) == 404


# --- expiry after the room ends ---------------------------------------------------------------------------------------


def test_a_link_is_valid_while_the_room_is_open_however_old(recordings_root: Path) -> None:
    room = room_named("marathon", "alice")
    recording = mix_of(room, recordings_root)
    client, status = link_opened(link_issued_at(room, "alice", timezone.now() - 30 * DAY))
    assert status == 204
    assert shown_recordings(client) == [recording.pk]


def test_a_link_expires_max_age_after_the_room_is_finalized(settings, recordings_root: Path) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDS_LINK_MAX_AGE_S = 3 * 24 * 3600
    room = room_named("weekly", "alice", finalized_ago=2 * DAY)
    recording = mix_of(room, recordings_root)
    # Issued at the join, long before: what counts is when the room ended.
    joined = timezone.now() - 10 * DAY
    visitor, status = link_opened(link_issued_at(room, "alice", joined))
    assert status == 204
    assert shown_recordings(visitor) == [recording.pk]
    assert download(visitor, recording) == 200

    Room.objects.filter(pk=room.pk).update(finalized_at=timezone.now() - 3 * DAY - datetime.timedelta(seconds=5))
    # The cookie the visitor already holds stops working...
    page = visitor.get("/records/")
    assert page.status_code == 403
    assert "has expired or was revoked" in page.content.decode()
    assert download(visitor, recording) == 404
    # ...and is dropped, as the page forgets grants that are no longer honoured.
    assert visitor.cookies["records_access"].value == ""
    # The link itself is refused too.
    _, status = link_opened(link_issued_at(room, "alice", joined))
    assert status == 403


# --- revocation -------------------------------------------------------------------------------------------------------


def revoker() -> Client:
    user = User.objects.create_user("moderator", password="x", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="rooms", codename__in=["view_room", "revoke_records_links"])
    )
    client = Client()
    client.force_login(user)
    return client


def test_revoked_links_stop_working_and_new_ones_work(recordings_root: Path) -> None:
    room = room_named("weekly", "alice", "bob", finalized_ago=DAY)
    recording = mix_of(room, recordings_root)
    alice = visitor_with_link(room.live_id, "alice")
    bobs_link = room_records_url(room_live_id=room.live_id, identity="bob")
    assert download(alice, recording) == 200

    response = revoker().post(
        "/admin/rooms/room/", {"action": "revoke_records_links", "_selected_action": [str(room.pk)]}, follow=True
    )
    assert "Revoked the records links of 1 room(s)" in response.content.decode()
    assert alice.get("/records/").status_code == 403
    assert download(alice, recording) == 404
    refused = Client().post("/records/access/", {"access": link_token(bobs_link)})
    assert (refused.status_code, refused.json()["error"]) == (403, "link_revoked")

    # A link issued after the revocation works.
    bob = visitor_with_link(room.live_id, "bob")
    assert shown_recordings(bob) == [recording.pk]

    entry = AuditEntry.objects.get(action="records_link.revoke")
    assert (entry.actor, entry.room, entry.target, entry.address) == (
        "user:moderator", "weekly", room.live_id, "127.0.0.1"
    )


def test_revoking_needs_its_own_permission() -> None:
    room = room_named("weekly", "alice")
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="rooms", codename__in=["view_room", "change_room"])
    )
    client = Client()
    client.force_login(user)
    changelist = client.get("/admin/rooms/room/").content.decode()
    assert 'value="finalize_rooms"' in changelist and 'value="revoke_records_links"' not in changelist
    client.post("/admin/rooms/room/", {"action": "revoke_records_links", "_selected_action": [str(room.pk)]})
    room.refresh_from_db()
    assert room.records_links_revoked_at is None
    assert 'value="revoke_records_links"' in revoker().get("/admin/rooms/room/").content.decode()


def test_finalizing_from_the_admin_needs_the_change_permission() -> None:
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label="rooms", codename="view_room"))
    client = Client()
    client.force_login(viewer)
    assert 'value="finalize_rooms"' not in client.get("/admin/rooms/room/").content.decode()


# --- the view permission ----------------------------------------------------------------------------------------------


def test_the_view_permission_shows_every_room_without_staff(recordings_root: Path) -> None:
    recordings = [mix_of(room_named(name, "alice"), recordings_root) for name in ("weekly", "retro")]
    holder = Client()
    holder.force_login(user_with_view_permission("auditor", is_staff=False))
    assert sorted(shown_recordings(holder)) == sorted(recording.pk for recording in recordings)
    assert download(holder, recordings[0]) == 200


def test_staff_without_the_view_permission_see_nothing(recordings_root: Path) -> None:
    recording = mix_of(room_named("weekly", "alice"), recordings_root)
    staff = Client()
    staff.force_login(User.objects.create_user("staff", password="x", is_staff=True))
    assert staff.get("/records/").status_code == 403
    assert download(staff, recording) == 404


# --- the audit trail --------------------------------------------------------------------------------------------------


def test_downloads_are_audited_once_per_reading(recordings_root: Path) -> None:
    room = room_named("weekly", "alice", finalized_ago=DAY)
    recording = mix_of(room, recordings_root)
    visitor = visitor_with_link(room.live_id, "alice")
    assert download(visitor, recording) == 200
    assert download(visitor, recording, range="bytes=0-") == 206
    # A player seeking, and HEAD: the same reading, not another download.
    assert download(visitor, recording, range="bytes=100-") == 206
    assert visitor.head(f"/records/{recording.pk}/download/").status_code == 200
    assert visitor.get(f"/records/{recording.pk}/sidecar/").status_code == 200
    operator_client("operator").get(f"/records/{recording.pk}/download/")

    entries = list(AuditEntry.objects.filter(action="record.download").order_by("pk"))
    assert [(entry.actor, entry.detail["file"]) for entry in entries] == [
        ("alice", "media"), ("alice", "media"), ("alice", "sidecar"), ("user:operator", "media"),
    ]
    assert {(entry.target, entry.room, entry.address) for entry in entries} == {
        (str(recording.pk), "weekly", "127.0.0.1")
    }


def test_deleting_files_is_audited(admin_client: Client, recordings_root: Path) -> None:
    recording = mix_of(room_named("weekly", "alice"), recordings_root)
    response = admin_client.post(
        "/admin/recording/recording/", {"action": "delete_files", "_selected_action": [str(recording.pk)]},
        follow=True,
    )
    assert "Deleted the files of 1 recording(s)." in response.content.decode()
    assert not (recordings_root / "weekly.webm").exists()
    entry = AuditEntry.objects.get(action="record.delete")
    assert (entry.actor, entry.target, entry.room, entry.address) == (
        "user:admin", str(recording.pk), "weekly", "127.0.0.1"
    )
    assert entry.detail == {"files": ["weekly.webm", "weekly.json"]}


def test_recording_rows_are_not_deleted_from_the_admin(admin_client: Client, recordings_root: Path) -> None:
    """Rows are history; only files are deleted, through the audited action."""
    recording = mix_of(room_named("weekly", "alice"), recordings_root)
    assert 'value="delete_selected"' not in admin_client.get("/admin/recording/recording/").content.decode()
    assert admin_client.get(f"/admin/recording/recording/{recording.pk}/delete/").status_code == 403
    assert Recording.objects.filter(pk=recording.pk).exists()
