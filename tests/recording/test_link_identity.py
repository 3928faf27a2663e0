"""Records links bound to their identity: with ROOM_AUTH=token the exchange needs the access token
of the link's identity or a login under its name; with ROOM_AUTH=open a link is a bearer link."""

from __future__ import annotations

import datetime
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from recording.links import room_records_url
from recording.models import Recording
from rooms.access_tokens import VideoGrants, grants_from_names, token_mint
from rooms.models import Participant, Room
from tests.recording.records_access import link_token, user_with_view_permission

pytestmark = pytest.mark.django_db

SECRET = "records-identity-secret-" + "x" * 32
PARTICIPANT = ["publish", "subscribe", "chat", "record"]


@pytest.fixture
def token_mode(settings):  # type: ignore[no-untyped-def]
    settings.ROOM_AUTH = "token"
    settings.API_KEYS = {"pages": SECRET}
    return settings


@pytest.fixture
def weekly(settings, tmp_path: Path) -> tuple[Room, Recording]:  # type: ignore[no-untyped-def]
    """Room "weekly", finalized an hour ago, alice and bob were in it, and its mix."""
    settings.RECORDINGS_ROOT = tmp_path
    room = Room.objects.create(
        name="weekly", live_id="live-weekly", status=Room.Status.FINALIZED,
        finalized_at=timezone.now() - datetime.timedelta(hours=1),
    )
    for login in ("alice", "bob"):
        Participant.objects.create(room=room, login=login, session=f"s-{login}")
    (tmp_path / "weekly.webm").write_bytes(b"\x1aE\xdf\xa3" + bytes(range(256)) * 8)
    recording = Recording.objects.create(
        room=room, kind=Recording.Kind.ROOM, status=Recording.Status.READY, file_path="weekly.webm"
    )
    return room, recording


def token_of(identity: str, *, room: str = "weekly", grants: VideoGrants | None = None, **options: Any) -> str:
    return token_mint(identity=identity, grants=grants or grants_from_names(PARTICIPANT, room=room), **options)


def alices_link(room: Room) -> str:
    return link_token(room_records_url(room_live_id=room.live_id, identity="alice"))


def exchanged(client: Client, link: str, bearer: str | None = None) -> tuple[int, dict[str, str] | None]:
    """What a page does: post the link's token, with its access token when it has one."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    response = client.post("/records/access/", {"access": link}, headers=headers)
    body = response.json() if response.status_code != 204 else None
    if response.status_code == 204:
        assert "records_access" in client.cookies
    else:
        assert not client.cookies.get("records_access")
    return response.status_code, body


def logged_in(name: str) -> Client:
    client = Client()
    client.force_login(User.objects.create_user(name, password=f"{name}-password-1"))
    return client


def sees_the_recording(client: Client, recording: Recording) -> bool:
    page = client.get("/records/")
    shown = page.status_code == 200 and f'<tr id="recording-{recording.pk}">' in page.content.decode()
    downloaded = client.get(f"/records/{recording.pk}/download/").status_code == 200
    assert shown == downloaded
    return shown


ADVICE = "open it from alice's meeting page, or log in as alice."


# --- token mode: the access token of the link's identity -----------------------------------------------------------


@pytest.mark.usefixtures("token_mode")
def test_alices_link_with_alices_token_opens_the_records(weekly: tuple[Room, Recording]) -> None:
    room, recording = weekly
    client = Client()
    assert exchanged(client, alices_link(room), token_of("alice")) == (204, None)
    assert sees_the_recording(client, recording)
    assert '<strong class="identity">alice</strong>' in client.get("/records/").content.decode()


@pytest.mark.usefixtures("token_mode")
def test_the_page_exchanges_with_its_csrf_header_and_token(weekly: tuple[Room, Recording]) -> None:
    """As the meeting page does it: CSRF cookie from the page, X-CSRFToken, Authorization."""
    room, recording = weekly
    page = Client(enforce_csrf_checks=True)
    assert page.get("/conference/?roomName=weekly").status_code == 200
    headers = {"X-CSRFToken": page.cookies["csrftoken"].value, "Authorization": f"Bearer {token_of('alice')}"}
    response = page.post("/records/access/", {"access": alices_link(room)}, headers=headers)
    assert response.status_code == 204
    assert sees_the_recording(page, recording)


@pytest.mark.usefixtures("token_mode")
def test_alices_link_with_bobs_token_is_refused_naming_both(weekly: tuple[Room, Recording]) -> None:
    room, recording = weekly
    client = Client()
    assert exchanged(client, alices_link(room), token_of("bob")) == (
        403, {"error": "link_identity", "message": f"This link was issued to alice, not to bob: {ADVICE}"}
    )
    assert not sees_the_recording(client, recording)


@pytest.mark.usefixtures("token_mode")
def test_alices_link_without_proof_is_refused(weekly: tuple[Room, Recording]) -> None:
    room, recording = weekly
    client = Client()
    assert exchanged(client, alices_link(room)) == (
        403, {"error": "link_identity", "message": f"This link was issued to alice: {ADVICE}"}
    )
    assert not sees_the_recording(client, recording)
    # Something that is not a bearer token proves nothing either.
    assert exchanged(client, alices_link(room), None)[0] == 403
    response = client.post("/records/access/", {"access": alices_link(room)}, headers={"Authorization": "Basic YQ=="})
    assert response.json()["error"] == "link_identity"


@pytest.mark.usefixtures("token_mode")
def test_alices_token_must_be_for_the_links_room(weekly: tuple[Room, Recording]) -> None:
    room, recording = weekly
    client = Client()
    status, body = exchanged(client, alices_link(room), token_of("alice", room="retro"))
    assert (status, body) == (403, {
        "error": "link_identity",
        "message": f"The access token sent with this link is for room “retro”, not “weekly”. "
        f"This link was issued to alice: {ADVICE}",
    })
    # roomAdmin of another room is no proof either; of every room (room "") it is.
    admin_of_retro = VideoGrants(room="retro", room_join=True, room_admin=True)
    assert exchanged(client, alices_link(room), token_of("alice", grants=admin_of_retro))[0] == 403
    admin_of_all = VideoGrants(room="", room_admin=True)
    assert exchanged(client, alices_link(room), token_of("alice", grants=admin_of_all)) == (204, None)
    assert sees_the_recording(client, recording)


@pytest.mark.usefixtures("token_mode")
def test_an_expired_or_forged_token_proves_nothing(weekly: tuple[Room, Recording]) -> None:
    room, _ = weekly
    expired = token_of("alice", ttl_s=60, now=int(time.time()) - 3600)
    status, body = exchanged(Client(), alices_link(room), expired)
    assert status == 403 and body is not None
    assert body == {
        "error": "link_identity",
        "message": f"The access token sent with this link is not accepted: the token has expired. "
        f"This link was issued to alice: {ADVICE}",
    }
    tampered = token_of("alice")[:-4] + "AAAA"
    status, body = exchanged(Client(), alices_link(room), tampered)
    assert status == 403 and body is not None and body["error"] == "link_identity"
    assert "signature" in body["message"]


@pytest.mark.usefixtures("token_mode")
def test_identities_compare_nfc_normalised(weekly: tuple[Room, Recording]) -> None:
    room, recording = weekly
    composed = unicodedata.normalize("NFC", "Zoë")
    link = link_token(room_records_url(room_live_id=room.live_id, identity=composed))
    client = Client()
    # The application minted the token with "e" + combining diaeresis.
    assert exchanged(client, link, token_of(unicodedata.normalize("NFD", composed))) == (204, None)
    assert sees_the_recording(client, recording)


# --- token mode: a login under the link's identity ----------------------------------------------------------------


@pytest.mark.usefixtures("token_mode")
def test_logged_in_as_alice_opens_alices_link(weekly: tuple[Room, Recording]) -> None:
    room, recording = weekly
    alice = logged_in("alice")
    assert not sees_the_recording(alice, recording)  # an account alone shows nothing
    assert exchanged(alice, alices_link(room)) == (204, None)
    assert sees_the_recording(alice, recording)


@pytest.mark.usefixtures("token_mode")
def test_logged_in_as_bob_cannot_open_alices_link(weekly: tuple[Room, Recording]) -> None:
    room, recording = weekly
    bob = logged_in("bob")
    assert exchanged(bob, alices_link(room)) == (
        403, {"error": "link_identity", "message": f"This link was issued to alice, not to bob: {ADVICE}"}
    )
    assert not sees_the_recording(bob, recording)
    # Nor with bob's token besides: both name bob.
    assert exchanged(bob, alices_link(room), token_of("bob"))[1] == {
        "error": "link_identity", "message": f"This link was issued to alice, not to bob: {ADVICE}"
    }
    # Logged in as bob with alice's token: the token proves alice.
    assert exchanged(bob, alices_link(room), token_of("alice")) == (204, None)


@pytest.mark.usefixtures("token_mode")
def test_users_who_see_every_room_exchange_any_link(weekly: tuple[Room, Recording]) -> None:
    room, recording = weekly
    operator = Client()
    operator.force_login(user_with_view_permission("operator"))
    assert exchanged(operator, alices_link(room)) == (204, None)
    assert sees_the_recording(operator, recording)


@pytest.mark.usefixtures("token_mode")
def test_an_expired_link_says_so_before_asking_for_proof(weekly: tuple[Room, Recording], settings) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDS_LINK_MAX_AGE_S = 60
    room, _ = weekly
    status, body = exchanged(Client(), alices_link(room), token_of("alice"))
    assert status == 403 and body is not None and body["error"] == "link_expired"


# --- open mode: a bearer link -----------------------------------------------------------------------------------


def test_in_open_mode_whoever_holds_the_link_opens_it(settings, weekly: tuple[Room, Recording]) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_AUTH = "open"
    settings.API_KEYS = {"pages": SECRET}
    room, recording = weekly
    anyone = Client()
    assert exchanged(anyone, alices_link(room)) == (204, None)
    assert sees_the_recording(anyone, recording)
    # A token or a login of someone else changes nothing: no identity is proven in open mode.
    bob = logged_in("bob")
    assert exchanged(bob, alices_link(room), token_of("bob")) == (204, None)
    assert sees_the_recording(bob, recording)
