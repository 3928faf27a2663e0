"""Pre-encoded media for the recording benchmark's publishers.

A publisher that encodes live costs the driver ~0.2 CPU-s/s per stream (VP8
640x480 at 1 Mbit/s, and a tone computed in Python). At N=4 the driver, the
baseline server (MediaRecorder encodes H.264 for every stream) and the other
users of a 2-core machine would not fit in it, and a starved publisher sends
fewer frames, which hides the baseline's cost. So each clip is encoded once
and ``ClipTrack`` sends its packets in a loop, paced in real time, with
timestamps that keep rising: aiortc's sender packetizes an ``av.Packet``
without encoding it.

The video clip is ``tests.bench.sfu_driver.TexturedVideoTrack`` (luma noise,
a moving bar, a frame counter), encoded with the settings of aiortc's own
encoders (VP8: realtime CBR; H.264: baseline, zerolatency) at the pinned
bitrate; it starts with a keyframe, so one arrives every loop
(``VIDEO_CLIP_S``). A sender of packets cannot answer a keyframe request: a
new subscriber waits for the next loop, which only the start of a
measurement sees. The audio clip is one second of
``tests.media_tracks.ToneAudioTrack`` in 20 ms Opus frames, as browsers and
aiortc send.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass
from typing import Any

import av
from aiortc.mediastreams import AUDIO_PTIME, VIDEO_CLOCK_RATE, MediaStreamTrack

from tests.bench.sfu_driver import FPS, HEIGHT, WIDTH, TexturedVideoTrack
from tests.media_tracks import ToneAudioTrack

VIDEO_CLIP_S = 2
AUDIO_CLIP_S = 1
OPUS_RATE = 48_000

VP8_OPTIONS = {"cpu-used": "-6", "deadline": "realtime", "lag-in-frames": "0", "static-thresh": "1"}
H264_OPTIONS = {"level": "31", "tune": "zerolatency"}


@dataclass(frozen=True)
class EncodedClip:
    kind: str
    packets: tuple[bytes, ...]
    time_base: fractions.Fraction
    ticks_per_packet: int

    @property
    def packets_per_second(self) -> float:
        return float(1 / (self.ticks_per_packet * self.time_base))


class ClipTrack(MediaStreamTrack):
    """Sends an encoded clip's packets in a loop, in real time."""

    def __init__(self, clip: EncodedClip) -> None:
        super().__init__()
        self.kind = clip.kind
        self.clip = clip
        self.count = 0  # packets sent so far
        self._start: float | None = None

    async def recv(self) -> av.Packet[Any]:  # type: ignore[override]
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self.count / self.clip.packets_per_second
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        packet = av.Packet(self.clip.packets[self.count % len(self.clip.packets)])
        packet.pts = self.count * self.clip.ticks_per_packet
        packet.time_base = self.clip.time_base
        self.count += 1
        return packet


async def video_clip(codec: str, bitrate: int) -> EncodedClip:
    frames = FPS * VIDEO_CLIP_S
    encoder = av.CodecContext.create("libvpx" if codec == "VP8" else "libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.bit_rate = bitrate
    encoder.framerate = fractions.Fraction(FPS, 1)
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.gop_size = frames  # the loop's first frame is its only keyframe
    if codec == "VP8":
        bits = str(bitrate)
        encoder.options = {**VP8_OPTIONS, "bufsize": bits, "minrate": bits, "maxrate": bits}
    else:
        encoder.options = H264_OPTIONS
        encoder.profile = "Baseline"
    source = TexturedVideoTrack()
    packets: list[bytes] = []
    for number in range(frames):
        frame = await source.recv()
        frame.pts, frame.time_base = number, encoder.time_base
        frame.pict_type = av.video.frame.PictureType.I if number == 0 else av.video.frame.PictureType.NONE
        packets += [bytes(packet) for packet in encoder.encode(frame)]
    packets += [bytes(packet) for packet in encoder.encode(None)]
    if len(packets) != frames:
        raise RuntimeError(f"{codec} encoder gave {len(packets)} packets for {frames} frames")
    return EncodedClip("video", tuple(packets), fractions.Fraction(1, VIDEO_CLOCK_RATE), VIDEO_CLOCK_RATE // FPS)


async def opus_clip() -> EncodedClip:
    samples = int(AUDIO_PTIME * OPUS_RATE)
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = OPUS_RATE, "stereo", "s16"
    encoder.bit_rate, encoder.options = 96_000, {"application": "voip"}  # as aiortc's Opus encoder
    encoder.time_base = fractions.Fraction(1, OPUS_RATE)
    stereo = av.AudioResampler(format="s16", layout="stereo", rate=OPUS_RATE)
    source = ToneAudioTrack(rate=OPUS_RATE)
    packets: list[bytes] = []
    for _ in range(AUDIO_CLIP_S * OPUS_RATE // samples):
        for frame in stereo.resample(await source.recv()):
            packets += [bytes(packet) for packet in encoder.encode(frame)]
    packets += [bytes(packet) for packet in encoder.encode(None)]
    return EncodedClip("audio", tuple(packets), fractions.Fraction(1, OPUS_RATE), samples)
