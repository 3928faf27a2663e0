"""Stale recordings: found from timestamps without a worker, shown in the admin, claimed once when mixed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from recording import mixing
from recording.models import Recording
from recording.services import recordings_stale_due, room_mix_run
from recording.stale import duration_text, recording_stale_reason
from rooms.models import Room

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/recording/recording/"


@pytest.fixture(autouse=True)
def ten_minutes(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDING_STALE_AFTER_S = 600
    settings.RECORDINGS_ROOT = tmp_path


def room_recording(name: str, status: str, *, ago_s: float, finalized_ago_s: float | None = None) -> Recording:
    now = timezone.now()
    room = Room.objects.create(
        name=name, live_id=f"live-{name}", record=True,
        status=Room.Status.FINALIZED if finalized_ago_s is not None else Room.Status.ACTIVE,
        finalized_at=None if finalized_ago_s is None else now - timedelta(seconds=finalized_ago_s),
    )
    recording, _ = Recording.objects.update_or_create(
        room=room, kind=Recording.Kind.ROOM,
        defaults={"status": status, "status_changed_at": now - timedelta(seconds=ago_s)},
    )
    return recording


def test_duration_text() -> None:
    assert [duration_text(timedelta(seconds=s)) for s in (45, 600, 7500)] == ["45 s", "10 min", "2 h 5 min"]


def test_reasons_follow_status_and_age() -> None:
    waiting = room_recording("waiting", Recording.Status.PENDING_MIX, ago_s=601, finalized_ago_s=700)
    fresh = room_recording("fresh", Recording.Status.PENDING_MIX, ago_s=599, finalized_ago_s=700)
    silent = room_recording("silent", Recording.Status.MIXING, ago_s=3600, finalized_ago_s=4000)
    unsettled = room_recording("unsettled", Recording.Status.RECORDING, ago_s=9000, finalized_ago_s=660)
    live = room_recording("live", Recording.Status.RECORDING, ago_s=9000)
    done = room_recording("done", Recording.Status.READY, ago_s=9000, finalized_ago_s=9000)
    now = timezone.now()
    assert recording_stale_reason(waiting, now) == "no worker has taken the mix for 10 min"
    assert recording_stale_reason(fresh, now) is None
    assert recording_stale_reason(silent, now) == (
        "the mixing worker has reported nothing for 1 h 0 min (it may have died)"
    )
    assert recording_stale_reason(unsettled, now) == "the room ended 11 min ago and no worker has taken its records"
    assert recording_stale_reason(live, now) is None  # a live room records for as long as it lives
    assert recording_stale_reason(done, now) is None


def test_the_admin_lists_and_explains_stale_rows(admin_client: Client) -> None:
    waiting = room_recording("waiting", Recording.Status.PENDING_MIX, ago_s=601, finalized_ago_s=700)
    room_recording("fresh", Recording.Status.PENDING_MIX, ago_s=30, finalized_ago_s=40)

    stale = admin_client.get(CHANGELIST, {"stale": "yes"}).content.decode()
    assert "1 result" in stale and "waiting" in stale and "no worker has taken the mix for 10 min" in stale
    not_stale = admin_client.get(CHANGELIST, {"stale": "no"}).content.decode()
    assert "1 result" in not_stale and "fresh" in not_stale and "no worker has taken" not in not_stale

    page = admin_client.get(f"{CHANGELIST}{waiting.pk}/change/").content.decode()
    assert "This recording is stale: no worker has taken the mix for 10 min." in page


def test_the_sweep_queues_again_only_stale_room_work() -> None:
    waiting = room_recording("waiting", Recording.Status.PENDING_MIX, ago_s=601, finalized_ago_s=700)
    silent = room_recording("silent", Recording.Status.MIXING, ago_s=3600, finalized_ago_s=4000)
    unsettled = room_recording("unsettled", Recording.Status.RECORDING, ago_s=9000, finalized_ago_s=660)
    room_recording("fresh", Recording.Status.PENDING_MIX, ago_s=30, finalized_ago_s=40)
    room_recording("live", Recording.Status.RECORDING, ago_s=9000)
    due = recordings_stale_due()
    assert due.rooms_to_finish == [unsettled.room_id]
    assert due.mixes == sorted([waiting.pk, silent.pk])


def test_a_mix_held_by_a_live_worker_is_not_taken_by_a_duplicate() -> None:
    held = room_recording("held", Recording.Status.MIXING, ago_s=5, finalized_ago_s=60)
    Recording.objects.filter(pk=held.pk).update(mix_task_id="first", progress=40)
    room_mix_run(held.pk, claim="duplicate")
    held.refresh_from_db()
    assert (held.status, held.mix_task_id, held.progress) == (Recording.Status.MIXING, "first", 40)


@pytest.mark.parametrize(("holder", "ago_s"), [("same-task", 5), ("dead-worker", 3600)])
def test_a_redelivered_or_abandoned_mix_is_taken_back(holder: str, ago_s: float) -> None:
    held = room_recording("held", Recording.Status.MIXING, ago_s=ago_s, finalized_ago_s=4000)
    Recording.objects.filter(pk=held.pk).update(mix_task_id=holder)
    room_mix_run(held.pk, claim="same-task")
    held.refresh_from_db()
    # Taken, and run: with no stream recorded the mix fails, saying so.
    assert (held.status, held.mix_task_id) == (Recording.Status.FAILED, "same-task")
    assert held.failure_reason == "no stream of the room was recorded"
    assert timezone.now() - held.status_changed_at < timedelta(seconds=60)


def test_a_done_mix_is_not_mixed_again() -> None:
    failed = room_recording("failed", Recording.Status.FAILED, ago_s=5, finalized_ago_s=60)
    room_mix_run(failed.pk, claim="late-copy")
    failed.refresh_from_db()
    assert (failed.status, failed.mix_task_id) == (Recording.Status.FAILED, "")


def test_progress_repeats_a_percent_as_a_sign_of_life(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(mixing.time, "monotonic", lambda: clock[0])
    calls: list[int] = []
    reporter = mixing._ProgressReporter(calls.append)
    reporter.report(7)
    clock[0] += 10
    reporter.report(7)  # nothing new, and too soon for a sign of life
    clock[0] += mixing.PROGRESS_HEARTBEAT_S
    reporter.report(7)
    assert calls == [7, 7]
