"""The chat track of a room mix: a mov_text stream and one packet per cue.

MP4 keeps text as 3GPP timed text (``tx3g``, FFmpeg's ``mov_text``). The
samples are built by ``recording.subtitles.mov_text_sample`` and muxed as
they are; FFmpeg's encoder is opened only because the muxer wants its
sample description (the ``tx3g`` box with the default style), which it
makes from an ASS header. Between cues the muxer writes empty samples, so a
cue is shown for its duration only.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import av

from recording.subtitles import ChatCue, mov_text_sample

SUBTITLE_TIME_BASE = Fraction(1, 1000)
# The smallest header FFmpeg's mov_text encoder opens with: one default style,
# from which it writes the track's default text style (white, bottom centre).
_ASS_HEADER = b"""[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, \
StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def chat_stream_add(container: Any) -> Any:
    """Add the chat's mov_text stream to an MP4 ``container`` (before its first packet is muxed)."""
    stream = container.add_stream("mov_text")
    stream.time_base = SUBTITLE_TIME_BASE
    stream.codec_context.subtitle_header = _ASS_HEADER
    stream.metadata["handler_name"] = "Chat"
    stream.metadata["language"] = "und"
    return stream


def chat_packets(cues: Sequence[ChatCue], stream: Any) -> list[Any]:
    """One packet per cue, in order, on ``stream``."""
    packets = []
    for cue in cues:
        packet = av.Packet(mov_text_sample(cue.text))
        packet.pts = packet.dts = cue.start_ms
        packet.duration = cue.end_ms - cue.start_ms
        packet.time_base = SUBTITLE_TIME_BASE
        packet.stream = stream
        packets.append(packet)
    return packets
