"""What webhooks does when rooms and recording report a fact: log it for every URL, then drain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver

from recording.models import Recording
from recording.signals import recording_failed, recording_ready
from rooms.models import Participant, Room, Stream
from rooms.signals import (
    participant_joined,
    participant_left,
    room_finalized,
    room_started,
    stream_published,
    stream_unpublished,
)
from webhooks import events, services, tasks


def _queue(event: Callable[[], events.WebhookEvent]) -> None:
    if not settings.WEBHOOK_URLS:
        return  # webhooks are off: not even the event is built
    built = event()
    with transaction.atomic():
        queues = [(url, built.room.live_id) for url in services.webhook_event_queue(built)]
        # Drains start once the deliveries are committed, so they find them.
        transaction.on_commit(lambda: tasks.webhook_queues_drain(queues), robust=True)


@receiver(room_started, dispatch_uid="webhooks.room_started")
def room_started_queue(sender: type[Room], room: Room, **kwargs: Any) -> None:
    _queue(lambda: events.room_started(room))


@receiver(participant_joined, dispatch_uid="webhooks.participant_joined")
def participant_joined_queue(sender: type[Participant], participant: Participant, **kwargs: Any) -> None:
    _queue(lambda: events.participant_joined(participant))


@receiver(participant_left, dispatch_uid="webhooks.participant_left")
def participant_left_queue(sender: type[Participant], participant: Participant, **kwargs: Any) -> None:
    _queue(lambda: events.participant_left(participant))


@receiver(stream_published, dispatch_uid="webhooks.stream_published")
def stream_published_queue(sender: type[Stream], stream: Stream, **kwargs: Any) -> None:
    _queue(lambda: events.stream_published(stream))


@receiver(stream_unpublished, dispatch_uid="webhooks.stream_unpublished")
def stream_unpublished_queue(sender: type[Stream], stream: Stream, **kwargs: Any) -> None:
    _queue(lambda: events.stream_unpublished(stream))


@receiver(room_finalized, dispatch_uid="webhooks.room_finished")
def room_finished_queue(sender: type[Room], room: Room, **kwargs: Any) -> None:
    _queue(lambda: events.room_finished(room))


@receiver(recording_ready, dispatch_uid="webhooks.recording_ready")
def recording_ready_queue(sender: type[Recording], recording: Recording, **kwargs: Any) -> None:
    _queue(lambda: events.recording_ready(recording))


@receiver(recording_failed, dispatch_uid="webhooks.recording_failed")
def recording_failed_queue(sender: type[Recording], recording: Recording, **kwargs: Any) -> None:
    _queue(lambda: events.recording_failed(recording))
