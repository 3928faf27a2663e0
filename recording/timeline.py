"""A room's history as its archive shows it: who joined, left, published,
muted and said what, when (on the server's clock, epoch ms).

Read from the history rows of ``rooms.models``. Only public chat is ever
read here: a private message (one with recipients) is neither on the
archive page nor in the subtitles.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import StrEnum

from recording.subtitles import ChatLine
from rooms.models import ChatMessage, Participant, Room, Stream, StreamMute

MS_PER_S = 1000


class EntryKind(StrEnum):
    JOIN = "join"
    LEAVE = "leave"
    PUBLISH = "publish"
    UNPUBLISH = "unpublish"
    SCREEN_START = "screen-start"
    SCREEN_STOP = "screen-stop"
    MUTE = "mute"
    CHAT = "chat"


@dataclass(frozen=True)
class TimelineEntry:
    at_ms: int  # server clock, epoch ms
    kind: EntryKind
    who: str
    text: str  # the message, for chat; else what happened, after ``who``
    message_id: str = ""  # chat only


LEAVE_TEXT: dict[str, str] = {
    Participant.LeaveReason.LEAVE: "left",
    Participant.LeaveReason.DISCONNECT: "lost the connection",
    Participant.LeaveReason.TIMEOUT: "was still in when the room ended",
    Participant.LeaveReason.KICKED: "was removed by a moderator",
}


def room_public_chat(room: Room) -> list[ChatLine]:
    """The room's public messages, in the order they were sent."""
    messages = ChatMessage.objects.filter(room=room, recipients__isnull=True).order_by("seq", "pk")
    return [
        ChatLine(message_id=message.public_id, sender=message.sender, text=message.text, sent_at_ms=message.sent_at_ms)
        for message in messages
    ]


def _ms(moment: datetime.datetime) -> int:
    return round(moment.timestamp() * MS_PER_S)


def _stream_entries(stream: Stream) -> list[TimelineEntry]:
    who = stream.participant.login
    screen = stream.kind == Stream.Kind.SCREEN
    entries = [
        TimelineEntry(
            _ms(stream.started_at),
            EntryKind.SCREEN_START if screen else EntryKind.PUBLISH,
            who,
            "started sharing the screen" if screen else "turned the camera on",
        )
    ]
    audio_muted = video_muted = False
    for mute in stream.mutes.all():
        entries.append(TimelineEntry(_ms(mute.at), EntryKind.MUTE, who, _mute_text(
            mute, audio_changed=mute.audio != audio_muted, video_changed=mute.video != video_muted, screen=screen
        )))
        audio_muted, video_muted = mute.audio, mute.video
    if stream.ended_at is not None:
        entries.append(
            TimelineEntry(
                _ms(stream.ended_at),
                EntryKind.SCREEN_STOP if screen else EntryKind.UNPUBLISH,
                who,
                "stopped sharing the screen" if screen else "turned the camera off",
            )
        )
    return entries


def _mute_text(mute: StreamMute, *, audio_changed: bool, video_changed: bool, screen: bool) -> str:
    """What a mute did, after the publisher's name: ``muted the microphone``,
    ``had the camera unmuted by carol``."""
    if not (audio_changed or video_changed):
        audio_changed = video_changed = True  # told again as it was: say the whole state
    video = "the screen share's video" if screen else "the camera"
    changes = []
    if audio_changed:
        changes.append(("muted" if mute.audio else "unmuted", "the microphone"))
    if video_changed:
        changes.append(("muted" if mute.video else "unmuted", video))
    if mute.by:
        return f"had {' and '.join(f'{what} {verb}' for verb, what in changes)} by {mute.by}"
    return " and ".join(f"{verb} {what}" for verb, what in changes)


def room_timeline(room: Room) -> list[TimelineEntry]:
    """Every entry of the room's history, in time order (entries of one moment in the order they happened)."""
    entries: list[TimelineEntry] = []
    participants = Participant.objects.filter(room=room).order_by("joined_at", "pk")
    for participant in participants:
        entries.append(TimelineEntry(_ms(participant.joined_at), EntryKind.JOIN, participant.login, "joined"))
        if participant.left_at is not None:
            what = LEAVE_TEXT.get(participant.leave_reason, "left")
            entries.append(TimelineEntry(_ms(participant.left_at), EntryKind.LEAVE, participant.login, what))
    streams = (
        Stream.objects.filter(participant__room=room)
        .select_related("participant")
        .prefetch_related("mutes")
        .order_by("started_at", "pk")
    )
    for stream in streams:
        entries.extend(_stream_entries(stream))
    for line in room_public_chat(room):
        entries.append(TimelineEntry(line.sent_at_ms, EntryKind.CHAT, line.sender, line.text, line.message_id))
    # Stable: at one moment a join comes before what the participant did, a leave after.
    return sorted(entries, key=lambda entry: (entry.at_ms, entry.kind == EntryKind.LEAVE))
