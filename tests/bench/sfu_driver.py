"""The driver side of the SFU benchmarks (``forwarding.py``, ``recording.py``).

The server process of ``tests/bench/forwarding_server.py`` and its JSON-lines
channel, loopback peer connections, players that count encoded frames
without decoding them, synthetic video an encoder cannot squeeze, and the
``/proc`` readings both benchmarks take.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from rooms.media.tap import EncodedFrameTap
from tests.bench.report import log
from tests.media_tracks import PacedVideoTrack, write_plane

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
WIDTH, HEIGHT, FPS = 640, 480, 30
NOISE_AMPLITUDE = 8
# A subscriber receiving this many of the publisher's FPS frames a second lost none that count.
TARGET_FPS = 28.0

READY_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 20.0
FIRST_FRAME_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- /proc ---------------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid`` so far."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


# --- Media ---------------------------------------------------------------------------------------------------------


class TexturedVideoTrack(PacedVideoTrack):
    """640x480@30 video an encoder cannot squeeze below ~1 Mbit/s.

    Every frame takes fresh luma noise (a random window of a pre-generated
    buffer), draws a bar that moves 8 pixels a frame and the frame number as 16
    black/white squares (as ``CounterVideoTrack`` does). Pure Python slicing:
    about 5 ms of CPU per second.
    """

    def __init__(self, width: int = WIDTH, height: int = HEIGHT, fps: int = FPS, seed: int = 1) -> None:
        super().__init__(width, height, fps)
        self._random = random.Random(seed)
        low, high = 128 - NOISE_AMPLITUDE, 128 + NOISE_AMPLITUDE
        levels = bytes(low + value * (high - low + 1) // 256 for value in range(256))
        self._noise = self._random.randbytes(width * height * 4).translate(levels)

    def picture(self, number: int) -> av.VideoFrame:
        width, height = self.width, self.height
        size = width * height
        offset = self._random.randrange(len(self._noise) - size)
        luma = bytearray(self._noise[offset : offset + size])
        bar_x = number * 8 % (width - 64)
        for row in range(height // 5, height * 4 // 5):
            luma[row * width + bar_x : row * width + bar_x + 64] = b"\xe0" * 64
        square = 40
        for bit in range(16):
            value = (b"\xff" if number >> bit & 1 else b"\x00") * square
            for row in range(square):
                start = row * width + bit * square
                luma[start : start + square] = value
        frame = av.VideoFrame(width, height, "yuv420p")
        write_plane(frame.planes[0], luma, width, height)
        for plane in frame.planes[1:]:
            plane.update(b"\x80" * (plane.line_size * plane.height))
        return frame


def peer_connection() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def check_loopback(sdp: str, what: str) -> None:
    """Fail unless every ICE candidate of ``sdp`` is on 127.0.0.1."""
    candidates = [line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")]
    if not candidates or any(address != HOST for address in candidates):
        raise RuntimeError(f"{what}: candidates {sorted(set(candidates))}, expected only {HOST}")


# --- The server process --------------------------------------------------------------------------------------------


class ServerProcess:
    """A ``tests.bench.forwarding_server`` process and its JSON-lines channel."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.pid = process.pid
        self.log_path = log_path
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, variant: str, codec: str, bitrate: int, log_path: Path) -> ServerProcess:
        with log_path.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.bench.forwarding_server",
                "--variant",
                variant,
                "--codec",
                codec,
                "--bitrate",
                str(bitrate),
                cwd=ROOT,
                env={**os.environ, "DJANGO_SETTINGS_MODULE": "conference_site.settings"},
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
            )
        server = cls(process, log_path)
        try:
            await asyncio.wait_for(asyncio.shield(server._ready), READY_TIMEOUT_S)
        except BaseException:
            await server.stop()
            raise
        return server

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("ready") and not self._ready.done():
                self._ready.set_result(message)
            future = self._waiting.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(message)
        ended = RuntimeError(f"the server exited (log: {self.log_path})")
        for future in [self._ready, *self._waiting.values()]:
            if not future.done():
                future.set_exception(ended)

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        self.process.stdin.write((json.dumps({"id": request_id, "op": op, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        reply = await asyncio.wait_for(future, REQUEST_TIMEOUT_S)
        if "error" in reply:
            raise RuntimeError(f"server {op}: {reply['error']} (log: {self.log_path})")
        return reply

    async def stop(self) -> None:
        """Ask the server to close its peer connections and exit; kill it if it does not."""
        try:
            if self.process.returncode is None and self.process.stdin is not None:
                with contextlib.suppress(ConnectionError):
                    self.process.stdin.write(b'{"op": "quit"}\n')
                    await self.process.stdin.drain()
                self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log(f"server {self.pid} did not exit; killing it")
                self.process.kill()
                await self.process.wait()
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


# --- Clients -------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Subscriber:
    """A player that counts the encoded frames its receiver reassembles, without decoding them."""

    pc: RTCPeerConnection
    offered_at: float = 0.0
    first_frame_at: float | None = None
    frames: int = 0
    bytes: int = 0
    audio_frames: int = 0

    def on_video(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        if codec.name == "rtx":
            return
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
        self.frames += 1
        self.bytes += len(frame.data)

    def on_audio(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        self.audio_frames += 1

    @property
    def first_frame_s(self) -> float | None:
        return None if self.first_frame_at is None else self.first_frame_at - self.offered_at


async def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def join(server: ServerProcess, audio: bool) -> Subscriber:
    pc = peer_connection()
    subscriber = Subscriber(pc)
    video = pc.addTransceiver("video", direction="recvonly")
    EncodedFrameTap.install(video.receiver).add_sink(subscriber.on_video)
    if audio:
        sound = pc.addTransceiver("audio", direction="recvonly")
        EncodedFrameTap.install(sound.receiver).add_sink(subscriber.on_audio)
    await pc.setLocalDescription(await pc.createOffer())
    check_loopback(pc.localDescription.sdp, "subscriber offer")
    subscriber.offered_at = time.monotonic()
    answer = (await server.request("play", sdp=pc.localDescription.sdp))["sdp"]
    check_loopback(answer, "play answer")
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return subscriber


async def close_all(pcs: Sequence[RTCPeerConnection]) -> None:
    if pcs:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True), CLOSE_TIMEOUT_S)
