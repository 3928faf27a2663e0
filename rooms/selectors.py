"""Reads of room history that several callers share."""

from __future__ import annotations

from typing import Any

from rooms.models import ChatMessage


def chat_message_payload(message: ChatMessage) -> dict[str, Any]:
    return {
        "id": message.public_id,
        "from": message.sender,
        "to": message.recipients,
        "text": message.text,
        "ts": message.sent_at_ms,
    }


def chat_history(*, room_live_id: str, up_to_seq: int, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` public messages of the room up to event ``up_to_seq``, oldest first."""
    newest = ChatMessage.objects.filter(
        room__live_id=room_live_id, recipients__isnull=True, seq__lte=up_to_seq
    ).order_by("-seq", "-id")[:limit]
    return [chat_message_payload(message) for message in reversed(list(newest))]
