"""Keyframe detection and keyframe requests toward a publisher."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ops import metrics

H264_NAL_IDR = 5
H264_NAL_SPS = 7


def is_keyframe(codec_name: str, data: bytes) -> bool:
    """Whether an encoded frame can start decoding.

    VP8: bit 0 of the first byte of the frame tag is 0 for a key frame
    (RFC 6386 section 9.1). H.264 (Annex B, as aiortc depayloads it): an IDR
    slice or a sequence parameter set opens a decodable sequence.
    """
    if not data:
        return False
    name = codec_name.upper()
    if name == "VP8":
        return data[0] & 0x01 == 0
    if name == "H264":
        return any(nal_type in (H264_NAL_IDR, H264_NAL_SPS) for nal_type in _h264_nal_types(data))
    return True  # audio: every frame stands alone


def _h264_nal_types(data: bytes) -> list[int]:
    types = []
    index = data.find(b"\x00\x00\x01")
    while index != -1 and index + 3 < len(data):
        types.append(data[index + 3] & 0x1F)
        index = data.find(b"\x00\x00\x01", index + 3)
    return types


class KeyframeRequester:
    """Sends a publisher picture-loss indications, at most one per interval.

    Requests inside the interval are coalesced into one sent when it ends,
    so a burst of new subscribers costs the publisher one keyframe, and the
    first subscriber after a quiet spell is answered at once. A prompt
    request (a subscriber that is coming up and has nothing to start from)
    waits at most ``prompt_interval`` since the last one: a joining player
    should not wait half a second for its first picture.
    """

    def __init__(self, send_pli: Callable[[], Awaitable[None]], min_interval: float = 0.5,
                 prompt_interval: float = 0.1) -> None:
        self._send_pli = send_pli
        self._min_interval = min_interval
        self._prompt_interval = prompt_interval
        self._last_sent = -float("inf")
        self._pending: asyncio.TimerHandle | None = None
        self._pending_at = 0.0
        self._in_flight: set[asyncio.Future[None]] = set()
        self.sent = 0

    def request(self, prompt: bool = False) -> None:
        now = time.monotonic()
        due = self._last_sent + (self._prompt_interval if prompt else self._min_interval)
        if self._pending is not None:
            if due >= self._pending_at:
                return
            self._pending.cancel()
            self._pending = None
        if due <= now:
            self._fire()
        else:
            self._pending_at = due
            self._pending = asyncio.get_running_loop().call_later(due - now, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._last_sent = time.monotonic()
        self.sent += 1
        metrics.KEYFRAME_REQUESTS.inc()
        task = asyncio.ensure_future(self._send_pli())
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
