"""Recording services called directly: the hook after a room mix, operator actions and their audit entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.models import AuditEntry
from recording.models import Recording
from recording.services import recording_remix, room_mix_run
from rooms.models import Room

pytestmark = pytest.mark.django_db


def mixed_room(root: Path, name: str) -> Recording:
    """A room whose mix is already written: room_mix_run only runs the hook."""
    room = Room.objects.create(name=name, live_id="f00dfeed", status=Room.Status.FINALIZED)
    (root / name).mkdir()
    (root / name / "room-f00dfeed.mp4").write_bytes(b"mix")
    return Recording.objects.create(
        room=room, kind=Recording.Kind.ROOM, status=Recording.Status.READY, file_path=f"{name}/room-f00dfeed.mp4"
    )


def test_the_hook_gets_the_room_in_its_environment_and_argv(
    settings, recordings_root: Path, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    seen = tmp_path / "seen.txt"
    script = tmp_path / "hook.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "argv=%s|%s\\nROOM_NAME=%s\\nROOM_ID=%s\\nRECORD_PATH=%s\\n" "$1" "$2" '
        f'"$ROOM_NAME" "$ROOM_ID" "$RECORD_PATH" > {seen}\n'
        'echo "uploaded $ROOM_NAME"\n'
    )
    script.chmod(0o755)
    settings.ON_MULTIPLE_RECORD_HOOK = str(script)
    recording = mixed_room(recordings_root, "weekly.sync_1")

    room_mix_run(recording.pk)

    path = recordings_root / "weekly.sync_1" / "room-f00dfeed.mp4"
    assert seen.read_text().splitlines() == [
        f"argv={path}|weekly.sync_1",
        "ROOM_NAME=weekly.sync_1",
        "ROOM_ID=f00dfeed",
        f"RECORD_PATH={path}",
    ]
    recording.refresh_from_db()
    assert (recording.hook_exit_status, recording.hook_output) == (0, "uploaded weekly.sync_1\n")


def test_the_hook_keeps_the_workers_environment(settings, recordings_root: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("UPLOAD_BUCKET", "records-eu")
    script = tmp_path / "hook.sh"
    script.write_text('#!/bin/sh\necho "$UPLOAD_BUCKET $ROOM_NAME"\n')
    script.chmod(0o755)
    settings.ON_MULTIPLE_RECORD_HOOK = str(script)
    recording = mixed_room(recordings_root, "weekly")
    room_mix_run(recording.pk)
    recording.refresh_from_db()
    assert recording.hook_output == "records-eu weekly\n"


def test_a_remix_is_audited(recordings_root: Path) -> None:
    recording = mixed_room(recordings_root, "weekly")
    recording_remix(recording=recording, actor="user:operator", address="10.0.0.7")
    recording.refresh_from_db()
    assert recording.status == Recording.Status.PENDING_MIX
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.target, entry.room, entry.address) == (
        "user:operator", "admin.remix", str(recording.pk), "weekly", "10.0.0.7"
    )
