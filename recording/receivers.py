"""What recording does when rooms and media nodes change."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from recording import links, services, stems_services, tasks
from recording.models import Recording
from recording.node_records import StreamRecordSink
from rooms.database import db_call
from rooms.media.messages import PublishCommand
from rooms.media.signals import stream_started
from rooms.media.sink import PublishedMedia, RecordStatusReporter
from rooms.models import Room
from rooms.signals import media_nodes_dead, room_finalized, room_history_expiring, room_records_url


@receiver(post_save, sender=Room, dispatch_uid="recording.room_created")
def room_created(sender: type[Room], instance: Room, created: bool, **kwargs: Any) -> None:
    if created and instance.record:
        services.room_recording_create(instance)


@receiver(room_finalized, dispatch_uid="recording.room_finalized")
def room_ended(sender: type[Room], room: Room, **kwargs: Any) -> None:
    wanted = room.record or (
        settings.RECORDING_EMPTY_SHIFT
        and Recording.objects.filter(room=room, kind=Recording.Kind.STREAM).exists()
    )
    if wanted:
        tasks.room_recordings_finish.delay(room.pk)


@receiver(room_records_url, dispatch_uid="recording.room_records_url")
def records_url(sender: type[Room], room_live_id: str, identity: str, **kwargs: Any) -> str:
    return links.room_records_url(room_live_id=room_live_id, identity=identity)


@receiver(stream_started, dispatch_uid="recording.stream_started")
def stream_record_start(
    sender: type, node: str, command: PublishCommand, media: PublishedMedia, record_status: RecordStatusReporter,
    **kwargs: Any,
) -> StreamRecordSink | None:
    if not command.record:
        return None
    return StreamRecordSink.start(node=node, command=command, media=media, record_status=record_status)


@receiver(media_nodes_dead, dispatch_uid="recording.media_nodes_dead")
async def records_of_dead_nodes_close(sender: Any, alive: set[str], **kwargs: Any) -> None:
    # Repairing the records copies whole files: seconds for long ones, spent
    # in the database thread pool rather than on the one thread every
    # synchronous receiver and consumer shares.
    await db_call(services.recordings_of_dead_nodes_close)(alive)


@receiver(room_history_expiring, dispatch_uid="recording.room_history_expiring")
def room_history_keep(sender: type[Room], room_ids: list[int], **kwargs: Any) -> set[int]:
    # A room's records point at its rows: they go first (RECORDINGS_RETENTION_DAYS).
    return services.rooms_with_kept_records(room_ids) | stems_services.rooms_with_kept_stems(room_ids)
