"""A finalized room's archive page, and the chat of a recording as WebVTT subtitles.

Who sees them is decided as for every records page (``recording.access``):
users with the view permission see every room, a room's link shows that
room. A visitor who may see nothing gets the records pages' 403 with the
way to log in; one who may see other rooms gets 404, as a download does, so
neither tells whether a room exists.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from recording.archive import (
    ArchiveChoice,
    ArchiveMedia,
    recording_file_start_ms,
    room_archive_choice,
    room_clock_origin_ms,
)
from recording.downloads import downloadable_file
from recording.models import Recording
from recording.subtitles import chat_cues, webvtt_document
from recording.timeline import EntryKind, TimelineEntry, room_public_chat, room_timeline
from recording.views import download_audit, visible_finalized_room, visible_recording
from rooms.attendance_selectors import rooms_attendance

MIX_NOT_PLAYED: dict[str, str] = {
    Recording.Status.RECORDING: "is not made yet",
    Recording.Status.PENDING_MIX: "is waiting to be made",
    Recording.Status.MIXING: "is being made",
    Recording.Status.FAILED: "failed",
}


@dataclass(frozen=True)
class PageEntry:
    entry: TimelineEntry
    at_s: float  # on the room's clock; negative before the recording starts

    @property
    def is_chat(self) -> bool:
        return self.entry.kind == EntryKind.CHAT

    @property
    def at(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.entry.at_ms / 1000, tz=datetime.UTC)


@dataclass(frozen=True)
class PageMedia:
    media: ArchiveMedia
    offset_s: float
    label: str
    src: str
    subtitles_url: str


def _media_label(media: ArchiveMedia) -> str:
    recording = media.recording
    if media.is_mix:
        return "The room's mix"
    kind = recording.stream.kind if recording.stream is not None else "stream"
    return f"{recording.participant}'s {kind} record"


def _choice_note(choice: ArchiveChoice, shown: list[PageMedia]) -> str:
    """What the player plays, and why that one."""
    # A ready mix is not played when its file is gone (an operator deleted it).
    mix_state = MIX_NOT_PLAYED.get(choice.mix.status, "has no file any more") if choice.mix is not None else None
    others = len(shown) - 1
    pick = ""
    if others > 0:
        pick = f" {others} other record{'s' if others != 1 else ''} can be played instead: pick one above."
    if not shown:
        if mix_state:
            return f"Nothing of this room can be played: its mix {mix_state}."
        return "Nothing of this room was recorded; its timeline is below."
    if shown[0].media.is_mix:
        return "Playing the room's mix: every recorded stream, with the public chat as subtitles." + pick
    why = f"This room's mix {mix_state}" if mix_state else "This room was not recorded as a whole"
    return f"{why}: playing {shown[0].label}, the longest of its stream records." + pick


@require_safe
@cache_control(private=True)
def room_archive(request: HttpRequest, live_id: str) -> HttpResponse:
    visible = visible_finalized_room(request, live_id)
    if isinstance(visible, HttpResponse):
        return visible
    viewer, room = visible
    choice = room_archive_choice(room)
    shown = [
        PageMedia(
            media=media, offset_s=choice.offset_s(media), label=_media_label(media),
            src=reverse("recording:download", args=[media.recording.pk]),
            subtitles_url=reverse("recording:subtitles", args=[media.recording.pk]),
        )
        for media in choice.media
    ]
    origin_ms = room_clock_origin_ms(room, choice)
    entries = [PageEntry(entry, (entry.at_ms - origin_ms) / 1000) for entry in room_timeline(room)]
    context = {
        "room": room,
        "media": shown,
        "player": shown[0] if shown else None,
        "note": _choice_note(choice, shown),
        "entries": entries,
        "attendance": rooms_attendance([room])[0].rows,
        "identity": viewer.identities.get(room.live_id),
        "every_room": viewer.every_room,
    }
    return render(request, "recording/archive.html", context)


@require_safe
@cache_control(private=True)
def subtitles(request: HttpRequest, pk: int) -> HttpResponse:
    """The room's public chat as WebVTT cues on the recording's clock (its file's time 0)."""
    viewer, recording = visible_recording(request, pk)
    if downloadable_file(recording, recording.file_path) is None:
        raise Http404
    origin_ms = recording_file_start_ms(recording)
    if origin_ms is None:
        raise Http404
    cues = chat_cues(room_public_chat(recording.room), origin_ms=origin_ms, duration_ms=recording.duration_ms)
    download_audit(request, viewer, recording, "subtitles")
    return HttpResponse(webvtt_document(cues), content_type="text/vtt; charset=utf-8")
