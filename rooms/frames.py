"""A server frame's text, encoded once however many connections it goes to.

An event for a room is encoded to JSON where it is sent (``rooms.events``)
and travels with its text; each web process decodes a group's message once
for all its members (``rooms.channel_layers``), and the first member to
send it makes the WebSocket frame (``PreparedFrame``), which the others
write as it is: no per recipient JSON, UTF-8 or framing. A server's frames
are not masked, so the bytes are the same on every connection.
"""

from __future__ import annotations

import json
from typing import Any

from autobahn.websocket.protocol import PreparedMessage

# Where a channel message keeps the frame made from its text (shared by the
# process's recipients of the same decoded message).
PREPARED_KEY = "prepared"


def frame_text(frame: dict[str, Any]) -> str:
    """The JSON text of a server message's frame, as every frame is sent."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


class PreparedFrame:
    """One text frame: its UTF-8 payload and the WebSocket frame around it."""

    __slots__ = ("payload", "prepared", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.payload = text.encode()
        # Kept uncompressed too, for a connection that negotiated compression.
        self.prepared = PreparedMessage(self.payload, isBinary=False, applyMask=False, doNotCompress=False)


def prepared_frame(message: dict[str, Any]) -> PreparedFrame:
    """The frame of a channel message carrying ``text``, made on first use."""
    prepared = message.get(PREPARED_KEY)
    if not isinstance(prepared, PreparedFrame):
        prepared = message[PREPARED_KEY] = PreparedFrame(message["text"])
    return prepared
