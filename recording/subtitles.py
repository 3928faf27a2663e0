"""A room's public chat as subtitles of its recording: cues, WebVTT, mov_text samples.

One cue per public message, ``<sender>: <text>``, shown from the moment it
was sent (on the recording's clock: the server time of the message less the
server time of the recording's time 0) for CUE_SHOW_MS, or until the next
message if that comes sooner. A track shows one cue at a time, so cues
start at least a millisecond apart. A message sent before the recording
started shows from 0 for what is left of its time; one sent after its end,
not at all.

The room mix carries the cues as a mov_text (3GPP timed text) track
(``recording.mix_subtitles``); the records pages serve the same cues as
WebVTT. Text round-trips exactly in both, in any script, with one
exception WebVTT forces: a cue cannot hold an empty line, so an empty line
of a message is written as a line holding one no-break space (and a
carriage return, like a line feed, ends a line).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CUE_SHOW_MS = 4000
# A mov_text sample's text length is a 16-bit field.
MOV_TEXT_MAX_BYTES = 0xFFFF
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_VTT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# Cue identifiers are message ids (hex); anything else is left out rather than trusted.
_CUE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


@dataclass(frozen=True)
class ChatLine:
    """A public chat message as the subtitles need it."""

    message_id: str
    sender: str
    text: str
    sent_at_ms: int  # server clock, epoch ms


@dataclass(frozen=True)
class ChatCue:
    message_id: str
    start_ms: int  # on the recording's clock
    end_ms: int
    text: str  # "<sender>: <text>", line breaks as "\n"


def chat_cue_text(sender: str, text: str) -> str:
    return _LINE_BREAK.sub("\n", f"{sender}: {text}")


def chat_cues(lines: Iterable[ChatLine], *, origin_ms: float, duration_ms: float | None = None) -> list[ChatCue]:
    """The cues of ``lines`` on a recording whose time 0 is ``origin_ms`` (server clock), ``duration_ms`` long."""
    ordered = sorted(lines, key=lambda line: line.sent_at_ms)  # stable: equal times keep the room's order
    limit = math.inf if duration_ms is None else math.floor(duration_ms)
    shown: list[tuple[ChatLine, int, int]] = []  # each line shown on the recording, with its start and end
    for line in ordered:
        moment = round(line.sent_at_ms - origin_ms)
        start, end = max(0, moment), min(moment + CUE_SHOW_MS, limit)
        if end <= start:
            continue  # wholly before the recording, or after its end
        if shown:
            start = max(start, shown[-1][1] + 1)
        shown.append((line, start, int(end)))
    cues = []
    for index, (line, start, end) in enumerate(shown):
        if index + 1 < len(shown):
            end = min(end, shown[index + 1][1])
        if end > start:
            cues.append(ChatCue(line.message_id, start, end, chat_cue_text(line.sender, line.text)))
    return cues


def webvtt_timestamp(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def webvtt_cue_payload(text: str) -> list[str]:
    """The cue text lines of ``text``: markup characters escaped, so ``<b>`` and
    ``-->`` are shown as typed; no line empty, since an empty line ends a cue."""
    return [line.translate(_VTT_ESCAPES) or "&nbsp;" for line in _LINE_BREAK.split(text)]


def webvtt_document(cues: Sequence[ChatCue]) -> str:
    """A WebVTT file of ``cues``, each named by its message's id."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        identifier = [cue.message_id] if _CUE_ID.fullmatch(cue.message_id) else []
        timing = f"{webvtt_timestamp(cue.start_ms)} --> {webvtt_timestamp(cue.end_ms)}"
        blocks.append("\n".join([*identifier, timing, *webvtt_cue_payload(cue.text)]) + "\n")
    return "\n".join(blocks)


def mov_text_sample(text: str) -> bytes:
    """A 3GPP timed text sample of ``text``: its UTF-8 length (16 bits, big-endian), then the text.

    Built here rather than by FFmpeg's mov_text encoder, which takes ASS
    markup and would read a message's ``{\\b1}`` as bold and ``\\N`` as a
    line break; a sample without style boxes is what that encoder writes for
    plain text.
    """
    encoded = text.encode("utf-8")
    if len(encoded) > MOV_TEXT_MAX_BYTES:
        encoded = encoded[:MOV_TEXT_MAX_BYTES].decode("utf-8", "ignore").encode("utf-8")
    return len(encoded).to_bytes(2, "big") + encoded
