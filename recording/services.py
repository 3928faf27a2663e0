"""Recording lifecycle: stream records, padding, room mixes, files.

Synchronous functions over the database and the files under
RECORDINGS_ROOT; the media node calls the stream-record ones through
``db_call``, the Celery tasks call the rest. Each one is safe to repeat.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from audit.services import audit_record
from ops import metrics
from ops.logs import log_context_bind, log_context_scoped
from recording.disk_space import DiskRefusal, quota_refusal
from recording.mixer_config import mixer_config_load
from recording.models import Recording
from recording.padding import record_pad
from recording.repair import RecordRepairError, record_repair
from recording.sidecar import SidecarError, sidecar_read, sidecars_room_start_ms
from recording.signals import recording_failed, recording_ready
from recording.stale import recordings_stale_q, stale_after
from recording.timeline import room_public_chat
from rooms.models import Room, Stream

logger = logging.getLogger(__name__)

# Stream records the room mix waits for: their node is still closing them.
UNSETTLED = (Recording.Status.RECORDING,)
# Files of other states are still being written, or are what a failed mix left.
PLAYABLE_STATUSES = frozenset({Recording.Status.READY, Recording.Status.PARTIAL})
HOOK_OUTPUT_KEPT = 64 * 1024


def recordings_root() -> Path:
    return Path(settings.RECORDINGS_ROOT)


def room_directory(room: str) -> Path:
    """Where every record of the room named ``room`` goes: its streams' and its mixes, of every life of the name."""
    return recordings_root() / room


def _recording_settled(recording_id: int, *, failed: bool) -> None:
    """Tell listeners, once the transaction commits, that a recording reached READY or PARTIAL, or FAILED."""
    signal = recording_failed if failed else recording_ready

    def send() -> None:
        # Robust: each receiver's error is logged; none reaches the service.
        signal.send_robust(sender=Recording, recording=Recording.objects.select_related("room").get(pk=recording_id))

    transaction.on_commit(send, robust=True)


def recording_file(recording: Recording) -> Path | None:
    return recordings_root() / recording.file_path if recording.file_path else None


def recording_file_path(relative_path: str) -> Path | None:
    """The existing regular file a recording's path names under RECORDINGS_ROOT, or None.

    Stored paths are relative; one that is absolute, climbs with ``..`` or
    leads out of the root through a symbolic link is refused rather than
    served.
    """
    if not relative_path or "\\" in relative_path or "\x00" in relative_path:
        return None
    parts = PurePosixPath(relative_path)
    if parts.is_absolute() or ".." in parts.parts:
        return None
    root = recordings_root().resolve()
    path = (root / parts).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


# --- stream records (media node) ---------------------------------------------------


def records_bytes_used() -> int:
    """Bytes of records on disk, as RECORDINGS_MAX_BYTES counts them: the sizes
    of finished recordings that keep their files, and the current size of
    each stream record still being written."""
    finished = Recording.objects.exclude(file_path="").exclude(size_bytes=None).aggregate(total=Sum("size_bytes"))
    used: int = finished["total"] or 0
    running = Recording.objects.filter(status=Recording.Status.RECORDING, size_bytes=None).exclude(file_path="")
    for relative in running.values_list("file_path", flat=True):
        path = recording_file_path(relative)
        if path is not None:
            used += path.stat().st_size
    return used


def recording_stream_start(
    *, room_live_id: str, stream_id: str, participant: str, node: str, file_path: str, sidecar_path: str,
    refusal: DiskRefusal | None = None,
) -> DiskRefusal | None:
    """A stream record's row: RECORDING, or FAILED with the reason when the
    free-space floor (``refusal``, found by the node) or the disk quota
    refuses it; the refusal is returned for the node to stop the record."""
    room = Room.objects.filter(live_id=room_live_id).first()
    if room is None:
        logger.warning("stream %s is recorded in room %s, which has no row", stream_id, room_live_id)
        return refusal
    if refusal is None:
        refusal = quota_refusal(records_bytes_used())
    fields: dict[str, object] = {"room": room, "participant": participant, "node": node}
    if refusal is None:
        fields.update(file_path=file_path, sidecar_path=sidecar_path)
    else:
        logger.warning("stream %s is not recorded: %s", stream_id, refusal.reason)
        fields.update(status=Recording.Status.FAILED, failure_reason=refusal.reason, ended_at=timezone.now())
    try:
        with transaction.atomic():
            Recording.objects.get_or_create(kind=Recording.Kind.STREAM, stream_live_id=stream_id, defaults=fields)
    except IntegrityError:
        pass  # the finish got there first
    return refusal


def recording_stream_finish(
    *, stream_id: str, file_path: str, size_bytes: int, duration_ms: int, failure: str, stopped: str = ""
) -> None:
    """Close a stream record's row: READY, FAILED with the reason, or PARTIAL
    with the reason it was ``stopped`` early (its file is playable)."""
    stream = Stream.objects.filter(live_id=stream_id).first()
    record = Recording.objects.filter(kind=Recording.Kind.STREAM, stream_live_id=stream_id)
    if failure:
        status, reason = Recording.Status.FAILED, failure
    elif stopped:
        status, reason = Recording.Status.PARTIAL, stopped
    else:
        status, reason = Recording.Status.READY, ""
    updated = record.filter(status__in=(Recording.Status.RECORDING, Recording.Status.PARTIAL)).update(
        status=status, failure_reason=reason, file_path=file_path, size_bytes=size_bytes, duration_ms=duration_ms,
        ended_at=timezone.now(), status_changed_at=timezone.now(), stream=stream,
    )
    if not updated:
        logger.warning("stream record %s finished without an open row", stream_id)
        return
    _recording_settled(record.values_list("pk", flat=True).get(), failed=bool(failure))


def recordings_of_dead_nodes_close(alive_nodes: set[str]) -> int:
    """Stream records whose node died: PARTIAL when a file remains, else FAILED.

    The file written until the node died is playable (its clusters were
    flushed as they closed); its tail is lost, and its duration and seek
    index, which the repair then writes.
    """
    orphans = list(
        Recording.objects.filter(kind=Recording.Kind.STREAM, status=Recording.Status.RECORDING).exclude(
            node__in=alive_nodes
        )
    )
    for recording in orphans:
        _record_close_unfinished(recording)
    return len(orphans)


def _probe_duration_ms(path: Path) -> int | None:
    """How far a record whose end was never written got."""
    import av

    from recording.mix_sources import media_end_s

    try:
        return int(media_end_s(path) * 1000)
    except (av.error.FFmpegError, OSError):
        return None


# --- room recordings --------------------------------------------------------------


def room_recording_create(room: Room) -> None:
    """The room mix's row, from the room's creation on: it shows RECORDING while the room lives."""
    try:
        with transaction.atomic():
            Recording.objects.get_or_create(room=room, kind=Recording.Kind.ROOM)
    except IntegrityError:
        pass


def room_stream_records(room: Room) -> list[Recording]:
    return list(Recording.objects.filter(room=room, kind=Recording.Kind.STREAM).order_by("started_at", "pk"))


@dataclass(frozen=True)
class RoomRecordsFinished:
    # False while a stream record is still being closed by its media node.
    settled: bool
    # The room recording now PENDING_MIX, whose mix the caller queues.
    mix_due: int | None = None


@log_context_scoped
def room_recordings_finish(room_id: int, *, give_up_waiting: bool = False) -> RoomRecordsFinished:
    """Settle and pad a finalized room's records; its mix becomes due.

    Not settled while a stream record is still being closed by its media
    node (the task asks again); with ``give_up_waiting`` such records are
    closed as their node would have been found dead.
    """
    room = Room.objects.get(pk=room_id)
    log_context_bind(room=room.name)
    records = room_stream_records(room)
    open_records = [record for record in records if record.status in UNSETTLED]
    if open_records and not give_up_waiting:
        return RoomRecordsFinished(settled=False)
    for record in open_records:
        _record_close_unfinished(record)
    if settings.RECORDING_EMPTY_SHIFT:
        records_pad(room_stream_records(room))
    mix = Recording.objects.filter(room=room, kind=Recording.Kind.ROOM).first()
    if mix is None and room.record:
        room_recording_create(room)
        mix = Recording.objects.get(room=room, kind=Recording.Kind.ROOM)
    if mix is not None and Recording.objects.filter(pk=mix.pk, status=Recording.Status.RECORDING).update(
        status=Recording.Status.PENDING_MIX, status_changed_at=timezone.now()
    ):
        return RoomRecordsFinished(settled=True, mix_due=mix.pk)
    return RoomRecordsFinished(settled=True)


def _record_close_unfinished(recording: Recording) -> None:
    """PARTIAL (then repaired) when the dead node left a file, else FAILED.

    The row is claimed by a conditional update before the file is touched,
    so of the processes sweeping at once only one repairs it.
    """
    path = recording_file(recording)
    size = path.stat().st_size if path is not None and path.exists() else 0
    status, reason = (
        (Recording.Status.PARTIAL, "the media node stopped while recording")
        if size
        else (Recording.Status.FAILED, "the media node stopped before anything was written")
    )
    if not Recording.objects.filter(pk=recording.pk, status=Recording.Status.RECORDING).update(
        status=status, failure_reason=reason, size_bytes=size, ended_at=timezone.now(),
        status_changed_at=timezone.now(),
    ):
        return
    if status == Recording.Status.PARTIAL and path is not None:
        _record_repair(recording, path)
    _recording_settled(recording.pk, failed=status == Recording.Status.FAILED)


def _record_repair(recording: Recording, path: Path) -> None:
    """Give a killed record its duration and seek index; the row notes it (or why not)."""
    sidecar = recording_file_path(recording.sidecar_path)
    started = time.monotonic()
    try:
        result = record_repair(path, sidecar)
    except (RecordRepairError, OSError) as error:
        logger.warning("record %s was not repaired: %s", recording.pk, error)
        Recording.objects.filter(pk=recording.pk).update(
            failure_reason=f"the media node stopped while recording; the file was not repaired: {error}",
            duration_ms=_probe_duration_ms(path),
        )
        return
    logger.info(
        "repaired record %s (%s, %.1f s) in %.2f s",
        recording.pk, result.path.name, result.duration_ms / 1000, time.monotonic() - started,
    )
    Recording.objects.filter(pk=recording.pk).update(
        repaired=True, file_path=str(result.path.relative_to(recordings_root())), size_bytes=result.size_bytes,
        duration_ms=result.duration_ms,
    )


def records_pad(records: list[Recording]) -> None:
    """Start every record at the room's first stream start (RECORDING_EMPTY_SHIFT)."""
    sidecars = []
    for record, path in _playable_sidecars(records):
        try:
            sidecars.append((record, path, sidecar_read(path)))
        except (OSError, SidecarError) as error:
            logger.warning("record %s has no usable sidecar: %s", record.pk, error)
    if not sidecars:
        return
    room_start = sidecars_room_start_ms([sidecar for _, _, sidecar in sidecars])
    for record, path, _ in sidecars:
        result = record_pad(path, room_start)
        if result.padded_ms:
            Recording.objects.filter(pk=record.pk).update(
                size_bytes=result.path.stat().st_size,
                duration_ms=(record.duration_ms or 0) + round(result.padded_ms),
            )


def _playable_sidecars(records: list[Recording]) -> list[tuple[Recording, Path]]:
    """The records whose file is whole or PARTIAL, with their sidecar files."""
    found = []
    for record in records:
        path = recording_file_path(record.sidecar_path) if record.status in PLAYABLE_STATUSES else None
        if path is not None:
            found.append((record, path))
    return found


def _mix_claim(recording_id: int, claim: str) -> bool:
    """Take the mix for the task ``claim``: one task mixes, every duplicate finds it taken.

    A due mix is free; so is one whose worker went silent (stale), and one
    held by ``claim`` itself, which is the same message given back to the
    queue when the worker running it died.
    """
    now = timezone.now()
    claimable = (
        Q(status=Recording.Status.PENDING_MIX)
        | Q(status=Recording.Status.MIXING, mix_task_id=claim)
        | Q(status=Recording.Status.MIXING, status_changed_at__lt=now - stale_after())
    )
    return bool(
        Recording.objects.filter(claimable, pk=recording_id).update(
            status=Recording.Status.MIXING, mix_task_id=claim, progress=0, failure_reason="", status_changed_at=now
        )
    )


@log_context_scoped
def room_mix_run(recording_id: int, *, claim: str = "") -> None:
    """Mix a room's stream records and its public chat into one MP4, then run the hook; safe to repeat.

    The mix is written under a temporary name and renamed into place, so a
    run that dies leaves no half file where the mix belongs, and a repeated
    run replaces nothing but a whole file with a whole file. ``claim`` names
    the run (the Celery task's id): a run that cannot take the mix (it is
    READY, or another run holds it) does nothing but the hook, once.
    """
    recording = Recording.objects.select_related("room").get(pk=recording_id)
    log_context_bind(room=recording.room.name)
    output = recording_file(recording)
    if recording.status == Recording.Status.READY and output is not None and output.exists():
        _hook_run_once(recording)
        return
    if not _mix_claim(recording.pk, claim or uuid.uuid4().hex):
        logger.info("the mix of room %s is not due (%s): nothing to do", recording.room.name, recording.status)
        return
    logger.info("mixing room %s (recording %s)", recording.room.name, recording.pk)
    room = recording.room
    directory = room_directory(room.name)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"room-{room.live_id}.mp4"
    for leftover in directory.glob(f".{target.stem}.*.mp4"):
        leftover.unlink(missing_ok=True)  # from a run that died
    sidecars = [path for _, path in _playable_sidecars(room_stream_records(room))]
    if not sidecars:
        _mix_failed(recording, "no stream of the room was recorded")
        return
    from recording import mixing  # numpy, Pillow and the encoders load in workers only

    temporary = directory / f".{target.stem}.{uuid.uuid4().hex[:8]}.mp4"
    started = time.monotonic()
    try:
        result = mixing.room_mix(
            sidecars, temporary, mixer_config_load(settings.OFFLINE_MIXER_CONFIG),
            progress=lambda percent: _mix_progress(recording.pk, percent), chat=room_public_chat(room),
        )
        os.replace(temporary, target)
        elapsed = time.monotonic() - started
        metrics.MIX_SECONDS.observe(elapsed)
        # How much faster than the meeting itself a mix runs: below 1 a worker
        # falls behind rooms that record all day.
        metrics.MIX_REALTIME_FACTOR.observe(result.duration_ms / 1000 / max(elapsed, 1e-6))
        logger.info("mixed %.1f s of media in %.1f s", result.duration_ms / 1000, elapsed)
    except Exception as error:
        temporary.unlink(missing_ok=True)
        logger.exception("mixing room %s failed", room.name)
        _mix_failed(recording, f"mixing failed: {error}")
        return
    Recording.objects.filter(pk=recording.pk).update(
        status=Recording.Status.READY, progress=100, file_path=str(target.relative_to(recordings_root())),
        size_bytes=target.stat().st_size, duration_ms=result.duration_ms, ended_at=timezone.now(),
        status_changed_at=timezone.now(), media_started_at_ms=result.media_started_at_ms,
    )
    _recording_settled(recording.pk, failed=False)
    recording.refresh_from_db()
    _hook_run_once(recording)


def _mix_progress(recording_id: int, percent: int) -> None:
    # Each report is also the worker's sign of life (see recording.stale).
    Recording.objects.filter(pk=recording_id, status=Recording.Status.MIXING).update(
        progress=min(99, percent), status_changed_at=timezone.now()
    )


def _mix_failed(recording: Recording, reason: str) -> None:
    Recording.objects.filter(pk=recording.pk).update(
        status=Recording.Status.FAILED, failure_reason=reason, status_changed_at=timezone.now()
    )
    _recording_settled(recording.pk, failed=True)


def _hook_run_once(recording: Recording) -> None:
    """Run ON_MULTIPLE_RECORD_HOOK with the mix's path and the room's name.

    The name and the room's id also come in the environment (``ROOM_NAME``,
    ``ROOM_ID``, ``RECORD_PATH``): a script need not parse argv, and a name
    can never be taken for an option there.

    Claimed by a conditional update, so a repeated task never runs it twice
    (-1 marks a hook that is running, or whose worker died while it ran).
    """
    hook = settings.ON_MULTIPLE_RECORD_HOOK
    output = recording_file(recording)
    if not hook or output is None:
        return
    if not Recording.objects.filter(pk=recording.pk, hook_exit_status__isnull=True).update(hook_exit_status=-1):
        return
    try:
        completed = subprocess.run(
            [hook, str(output), recording.room.name], capture_output=True, check=False, cwd=output.parent,
            timeout=settings.ON_MULTIPLE_RECORD_HOOK_TIMEOUT_S,
            env={
                **os.environ,
                "ROOM_NAME": recording.room.name,
                "ROOM_ID": recording.room.live_id,
                "RECORD_PATH": str(output),
            },
        )
        status, text = completed.returncode, (completed.stdout + completed.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired as error:
        output_so_far = (error.stdout or b"") + (error.stderr or b"")
        status, text = -2, output_so_far.decode(errors="replace") + f"\n[timed out after {error.timeout} s]"
    except OSError as error:
        status, text = -3, f"could not run {hook}: {error}"
    Recording.objects.filter(pk=recording.pk).update(hook_exit_status=status, hook_output=text[-HOOK_OUTPUT_KEPT:])


@dataclass(frozen=True)
class RecordingsDue:
    # Finalized rooms whose records no worker has settled.
    rooms_to_finish: list[int]
    # Room recordings whose mix no worker has taken, or whose worker went silent.
    mixes: list[int]


def recordings_stale_due() -> RecordingsDue:
    """What the recordings sweep queues again: the stale rows' work (see recording.stale)."""
    stale = Recording.objects.filter(recordings_stale_q(timezone.now()), kind=Recording.Kind.ROOM)
    return RecordingsDue(
        rooms_to_finish=sorted(stale.filter(status=Recording.Status.RECORDING).values_list("room_id", flat=True)),
        mixes=sorted(
            stale.filter(status__in=(Recording.Status.PENDING_MIX, Recording.Status.MIXING)).values_list(
                "pk", flat=True
            )
        ),
    )


def recording_remix(*, recording: Recording, actor: str, address: str | None = None) -> None:
    """Make a room recording's mix due again (operator action); the caller queues ``room_mix``."""
    if recording.kind != Recording.Kind.ROOM:
        raise ValueError("only room recordings are mixed")
    Recording.objects.filter(pk=recording.pk).exclude(status=Recording.Status.MIXING).update(
        status=Recording.Status.PENDING_MIX, progress=0, failure_reason="", status_changed_at=timezone.now()
    )
    audit_record(actor=actor, action="admin.remix", target=str(recording.pk), room=recording.room.name, address=address)


def recording_files_delete(*, recording: Recording, actor: str, address: str | None = None) -> None:
    """Delete a recording's files and keep its row as history; the audit trail says who did it."""
    deleted = [relative for relative in (recording.file_path, recording.sidecar_path) if relative]
    for relative in deleted:
        path = recording_file_path(relative)
        if path is not None:
            path.unlink()
    Recording.objects.filter(pk=recording.pk).update(file_path="", sidecar_path="", size_bytes=None)
    audit_record(
        actor=actor, action="record.delete", target=str(recording.pk), room=recording.room.name, address=address,
        detail={"files": deleted},
    )


# --- retention (Celery beat) -------------------------------------------------------

RETENTION_ACTOR = "retention"
# Rows still being written or mixed are not expired under their worker.
IN_PROGRESS = (Recording.Status.RECORDING, Recording.Status.PENDING_MIX, Recording.Status.MIXING)


def recordings_expired_delete(*, now: datetime) -> int:
    """Delete the files and rows of recordings started more than
    RECORDINGS_RETENTION_DAYS before ``now`` (0 days: keep forever), each
    written to the audit trail as an operator's deletion is; the number deleted."""
    days: int = settings.RECORDINGS_RETENTION_DAYS
    if days <= 0:
        return 0
    expired = (
        Recording.objects.filter(started_at__lt=now - timedelta(days=days))
        .exclude(status__in=IN_PROGRESS)
        .select_related("room")
        .order_by("pk")
    )
    deleted = 0
    for recording in expired.iterator(chunk_size=200):
        files = [relative for relative in (recording.file_path, recording.sidecar_path) if relative]
        for relative in files:
            path = recording_file_path(relative)
            if path is not None:
                path.unlink(missing_ok=True)
        with transaction.atomic():
            Recording.objects.filter(pk=recording.pk).delete()
            audit_record(
                actor=RETENTION_ACTOR, action="record.delete", target=str(recording.pk), room=recording.room.name,
                detail={"files": files, "row": True, "retention_days": days},
            )
        deleted += 1
    return deleted


def rooms_with_kept_records(room_ids: list[int]) -> set[int]:
    """Rooms among ``room_ids`` with record files still kept: their history stays."""
    return set(
        Recording.objects.filter(room_id__in=room_ids).exclude(file_path="").values_list("room_id", flat=True)
    )
