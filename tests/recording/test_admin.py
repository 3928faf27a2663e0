"""The recordings admin: list, read-only detail, re-mix and delete-files actions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from recording.models import Recording
from rooms.models import Participant, Room

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/recording/recording/"


@pytest.fixture
def recordings_root(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def weekly(recordings_root: Path) -> Room:
    room = Room.objects.create(name="weekly", live_id="live-weekly", status=Room.Status.FINALIZED)
    Participant.objects.create(room=room, login="alice", session="s1")
    return room


def mix_of(room: Room, root: Path, **fields: object) -> Recording:
    (root / "weekly").mkdir(exist_ok=True)
    (root / "weekly/mix.webm").write_bytes(b"mix")
    (root / "weekly/mix.json").write_bytes(b"{}")
    defaults: dict[str, object] = {
        "status": Recording.Status.READY, "file_path": "weekly/mix.webm", "sidecar_path": "weekly/mix.json",
        "size_bytes": 3, "duration_ms": 61_000, "hook_exit_status": 0,
    }
    return Recording.objects.create(room=room, kind=Recording.Kind.ROOM, **{**defaults, **fields})


def stream_record_of(room: Room, **fields: object) -> Recording:
    return Recording.objects.create(
        room=room, kind=Recording.Kind.STREAM, participant="alice", stream_live_id="s-alice", **fields
    )


def test_changelist_shows_state_and_links(admin_client: Client, weekly: Room, recordings_root: Path) -> None:
    ready = mix_of(weekly, recordings_root)
    mixing = stream_record_of(weekly, status=Recording.Status.MIXING, progress=42)
    html = admin_client.get(CHANGELIST).content.decode()
    assert f'href="/records/{ready.pk}/download/"' in html
    assert "1:01" in html and "3\xa0bytes" in html
    assert "42%" in html
    assert f'href="/records/{mixing.pk}/download/"' not in html

    filtered = admin_client.get(CHANGELIST, {"status__exact": "MIXING"}).content.decode()
    assert f"/admin/recording/recording/{mixing.pk}/change/" in filtered
    assert f"/admin/recording/recording/{ready.pk}/change/" not in filtered
    assert "0 results" in admin_client.get(CHANGELIST, {"q": "retro"}).content.decode()
    assert "1 result" in admin_client.get(CHANGELIST, {"q": "weekly", "kind__exact": "room"}).content.decode()


def test_detail_is_a_read_only_view(admin_client: Client, weekly: Room, recordings_root: Path) -> None:
    recording = mix_of(
        weekly, recordings_root, status=Recording.Status.PARTIAL, hook_exit_status=3,
        hook_output="uploading…\n<error> disk full", failure_reason="the mixer stopped",
    )
    response = admin_client.get(f"{CHANGELIST}{recording.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<pre class="hook-output">uploading…\n&lt;error&gt; disk full</pre>' in html
    assert "the mixer stopped" in html
    assert f'<a href="/records/{recording.pk}/download/">weekly/mix.webm</a>' in html
    assert f'<a href="/records/{recording.pk}/sidecar/">weekly/mix.json</a>' in html
    assert 'name="_save"' not in html
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403


def test_detail_tells_why_a_file_is_not_offered(admin_client: Client, weekly: Room, recordings_root: Path) -> None:
    recording = mix_of(weekly, recordings_root, status=Recording.Status.MIXING, sidecar_path="weekly/gone.json")
    html = admin_client.get(f"{CHANGELIST}{recording.pk}/change/").content.decode()
    assert "weekly/mix.webm <em>(not downloadable while mixing)</em>" in html
    assert "weekly/gone.json <em>(missing)</em>" in html


def test_delete_files_action(admin_client: Client, weekly: Room, recordings_root: Path) -> None:
    recording = mix_of(weekly, recordings_root)
    response = admin_client.post(
        CHANGELIST, {"action": "delete_files", "_selected_action": [recording.pk]}, follow=True
    )
    assert "Deleted the files of 1 recording(s)." in response.content.decode()
    assert not (recordings_root / "weekly/mix.webm").exists()
    assert not (recordings_root / "weekly/mix.json").exists()
    recording.refresh_from_db()
    assert (recording.file_path, recording.sidecar_path) == ("", "")


def test_remix_action_skips_stream_records(admin_client: Client, weekly: Room) -> None:
    record = stream_record_of(weekly, status=Recording.Status.READY)
    response = admin_client.post(CHANGELIST, {"action": "remix", "_selected_action": [record.pk]}, follow=True)
    page = response.content.decode()
    assert "Queued 0 room recording(s) for mixing." in page
    assert "Skipped 1 stream record(s): only room recordings are mixed." in page
    record.refresh_from_db()
    assert record.status == Recording.Status.READY


def test_remix_action_queues_the_mix(admin_client: Client, weekly: Room, recordings_root: Path) -> None:
    pytest.importorskip("recording.tasks", reason="the mixing tasks are not written yet")
    recording = mix_of(weekly, recordings_root, status=Recording.Status.FAILED, failure_reason="no streams")
    broker = Path(settings.CELERY_BROKER_FOLDER)
    broker.mkdir(parents=True, exist_ok=True)
    before = set(broker.glob("*.msg"))
    response = admin_client.post(CHANGELIST, {"action": "remix", "_selected_action": [recording.pk]}, follow=True)
    assert "Queued 1 room recording(s) for mixing." in response.content.decode()
    recording.refresh_from_db()
    assert (recording.status, recording.failure_reason) == (Recording.Status.PENDING_MIX, "")
    queued = [json.loads(path.read_text()) for path in set(broker.glob("*.msg")) - before]
    # Take the message back: no worker of this test will run the mix.
    for path in set(broker.glob("*.msg")) - before:
        path.unlink()
    assert [message["headers"]["task"] for message in queued] == ["recording.tasks.room_mix"]
    assert queued[0]["headers"]["argsrepr"] == f"({recording.pk},)"


def test_a_repaired_record_is_shown_and_filtered(admin_client: Client, weekly: Room, recordings_root: Path) -> None:
    repaired = stream_record_of(
        weekly, status=Recording.Status.PARTIAL, repaired=True, duration_ms=4_200,
        failure_reason="the media node stopped while recording",
    )
    whole = mix_of(weekly, recordings_root)
    detail = admin_client.get(f"{CHANGELIST}{repaired.pk}/change/").content.decode()
    assert "Repaired" in detail and "Rewritten with a duration and a seek index" in detail
    assert 'alt="True"' in detail
    assert 'alt="False"' in admin_client.get(f"{CHANGELIST}{whole.pk}/change/").content.decode()
    only_repaired = admin_client.get(CHANGELIST, {"repaired__exact": "1"}).content.decode()
    assert f"{CHANGELIST}{repaired.pk}/change/" in only_repaired
    assert f"{CHANGELIST}{whole.pk}/change/" not in only_repaired
