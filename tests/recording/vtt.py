"""A strict reader of the WebVTT files the archive serves (W3C WebVTT, the parts they use).

Stricter than browsers on purpose: anything a browser would repair or skip
is an error here. A file is ``WEBVTT`` and a blank line, then cue blocks
separated by one blank line: an optional identifier (no ``-->``), a timing
line ``hh:mm:ss.ttt --> hh:mm:ss.ttt`` (end after start, starts in order),
and one or more non-empty payload lines. Payload text may hold no markup
(no ``<``: the archive writes plain text) and no raw ``-->`` or ``>``; the
character references ``&amp; &lt; &gt; &nbsp;`` are decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TIMESTAMP = r"(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})"
_TIMING = re.compile(rf"{_TIMESTAMP} --> {_TIMESTAMP}")
_REFERENCE = re.compile(r"&(amp|lt|gt|nbsp);")
_DECODED = {"amp": "&", "lt": "<", "gt": ">", "nbsp": "\u00a0"}


class VttError(ValueError):
    pass


@dataclass(frozen=True)
class VttCue:
    identifier: str | None
    start_ms: int
    end_ms: int
    text: str  # payload lines joined by "\n", references decoded


def _ms(hours: str, minutes: str, seconds: str, millis: str) -> int:
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


def _payload_line(line: str, where: str) -> str:
    if "<" in line or ">" in line or "-->" in line:
        raise VttError(f"{where}: markup or an arrow in cue text: {line!r}")
    if re.search(r"&(?!(amp|lt|gt|nbsp);)", line):
        raise VttError(f"{where}: an ampersand that starts no known reference: {line!r}")
    return _REFERENCE.sub(lambda match: _DECODED[match.group(1)], line)


def vtt_parse(text: str) -> list[VttCue]:
    if "\r" in text or "\x00" in text:
        raise VttError("carriage return or NUL in the file")
    if not text.endswith("\n"):
        raise VttError("the file does not end with a line break")
    blocks = text[:-1].split("\n\n")
    if blocks[0] != "WEBVTT":
        raise VttError(f"bad header: {blocks[0]!r}")
    cues: list[VttCue] = []
    for number, block in enumerate(blocks[1:], start=1):
        where = f"block {number}"
        lines = block.split("\n")
        if not block or "" in lines:
            raise VttError(f"{where}: empty line inside, or two blank lines in a row")
        identifier = None
        if "-->" not in lines[0]:
            identifier = lines.pop(0)
            if not lines:
                raise VttError(f"{where}: an identifier without a cue")
        timing = _TIMING.fullmatch(lines[0])
        if timing is None:
            raise VttError(f"{where}: bad timing line {lines[0]!r}")
        start, end = _ms(*timing.groups()[:4]), _ms(*timing.groups()[4:])
        if end <= start:
            raise VttError(f"{where}: ends at or before it starts")
        if cues and start < cues[-1].start_ms:
            raise VttError(f"{where}: starts before the previous cue")
        if len(lines) < 2:
            raise VttError(f"{where}: no cue text")
        text_lines = [_payload_line(line, where) for line in lines[1:]]
        cues.append(VttCue(identifier, start, end, "\n".join(text_lines)))
    return cues
