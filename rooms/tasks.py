"""Celery tasks of rooms: thin wrappers over services."""

import asyncio

from celery import shared_task
from django.utils import timezone

from rooms import retention, services
from rooms.live.context import process_context_close


@shared_task(ignore_result=True)
def sweep_rooms() -> int:
    """Finalize due rooms and drop dead processes' sessions (Celery beat)."""

    async def sweep() -> int:
        try:
            return await services.rooms_sweep()
        finally:
            await process_context_close()

    return asyncio.run(sweep())


@shared_task(ignore_result=True)
def rooms_history_retention() -> int:
    """Delete the history of rooms past ROOM_HISTORY_RETENTION_DAYS (Celery beat)."""
    return retention.rooms_history_expired_delete(now=timezone.now())


@shared_task(ignore_result=True)
def chat_retention() -> int:
    """Delete chat messages past CHAT_RETENTION_DAYS (Celery beat)."""
    return retention.chat_expired_delete(now=timezone.now())
