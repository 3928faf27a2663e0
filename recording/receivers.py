"""What recording does when rooms are created and finalized."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from recording import services
from recording.models import Recording
from rooms.models import Room
from rooms.signals import room_finalized


@receiver(post_save, sender=Room, dispatch_uid="recording.room_created")
def room_created(sender: type[Room], instance: Room, created: bool, **kwargs: Any) -> None:
    if created and instance.record:
        services.room_recording_create(instance)


@receiver(room_finalized, dispatch_uid="recording.room_finalized")
def room_ended(sender: type[Room], room: Room, **kwargs: Any) -> None:
    from recording import tasks

    wanted = room.record or (
        settings.RECORDING_EMPTY_SHIFT
        and Recording.objects.filter(room=room, kind=Recording.Kind.STREAM).exists()
    )
    if wanted:
        tasks.room_recordings_finish.delay(room.pk)
