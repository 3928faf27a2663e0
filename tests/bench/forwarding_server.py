"""The server process of ``tests/bench/forwarding.py``: one SFU variant, driven over stdin/stdout.

Two variants, one publisher, any number of players:

- ``passthrough``: the project's SFU core, ``rooms.media.peer.PublishedStream``
  and ``PlayedStream`` (encoded frames forwarded, nothing decoded or encoded);
- ``relay``: the baseline, a minimal aiortc server in the style of aiortc's
  examples. The publisher's received tracks are decoded by aiortc's receiver
  and fanned out with ``aiortc.contrib.media.MediaRelay``; each player's sender
  encodes them again. Its proxies are unbuffered (``buffered=False``: a player
  that falls behind skips frames instead of queueing them without bound), and
  one extra proxy is always drained, so the publisher's frames are decoded and
  consumed even with no player (otherwise aiortc queues every decoded frame).
  Its encoders are pinned to ``--bitrate`` like the publisher's, so both
  variants deliver about the same bitrate.

Protocol: one JSON object per line. The process first writes
``{"ready": true, "pid": ...}``; then each request ``{"id": n, "op": "publish"
| "play", "sdp": offer}`` is answered with ``{"id": n, "sdp": answer}`` (or
``{"id": n, "error": ...}``), ``{"id": n, "op": "stats"}`` with counters, and
``{"op": "quit"}`` or end of input closes every peer connection and exits.
The ``streams...`` variants (several publishers, recorded or not) are
``tests/bench/recording_server.py``'s, for ``tests/bench/recording.py``.
Media uses 127.0.0.1 only. Started by the benchmark, from the project root::

    .venv/bin/python -m tests.bench.forwarding_server --variant passthrough --codec VP8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from typing import Any, Protocol, TextIO

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conference_site.settings")

import django

django.setup()

# isort: split
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.codecs import h264, vpx  # noqa: E402
from aiortc.contrib.media import MediaRelay  # noqa: E402
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack  # noqa: E402
from django.conf import settings  # noqa: E402

from rooms.media.peer import PlayedStream, PublishedStream, use_host_address, video_capabilities  # noqa: E402
from rooms.media.tap import check_aiortc_internals  # noqa: E402
from tests.bench.recording_server import RECORDING_VARIANTS, RecordingServer  # noqa: E402

logger = logging.getLogger("forwarding_server")
HOST = "127.0.0.1"


class Server(Protocol):
    async def publish(self, sdp: str) -> str: ...

    async def play(self, sdp: str) -> str: ...

    def stats(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class PassthroughServer:
    """The project's SFU core, as ``rooms.media.node`` uses it."""

    def __init__(self, codec: str) -> None:
        check_aiortc_internals()
        self.codec = codec
        self.published: PublishedStream | None = None

    async def publish(self, sdp: str) -> str:
        # Capped as a media node caps it (ROOM_MAX_VIDEO_KBPS; 0 measures without).
        self.published, answer = await PublishedStream.accept(
            stream_id="bench", offer_sdp=sdp, video_codec=self.codec, ice_servers=[],
            max_video_kbps=settings.ROOM_MAX_VIDEO_KBPS,
        )
        return answer

    async def play(self, sdp: str) -> str:
        assert self.published is not None, "play before publish"
        _, answer = await PlayedStream.accept(
            published=self.published, offer_sdp=sdp, video_codec=self.codec, ice_servers=[]
        )
        return answer

    def stats(self) -> dict[str, Any]:
        published = self.published
        keyframes = published.keyframes if published else None
        return {
            "players": len(published.players) if published else 0,
            "keyframe_requests_sent": keyframes.sent if keyframes else 0,
            "remb_sent": published.bitrate_cap.sent if published and published.bitrate_cap else 0,
        }

    async def close(self) -> None:
        if self.published is not None:
            await self.published.close()


class RelayServer:
    """Baseline: decode once, ``MediaRelay`` to every player, encode per player."""

    def __init__(self, codec: str, bitrate: int) -> None:
        self.codec = codec
        for module in (vpx, h264):  # as the benchmark's publisher does
            for name in ("DEFAULT_BITRATE", "MIN_BITRATE", "MAX_BITRATE"):
                setattr(module, name, bitrate)
        self.relay = MediaRelay()
        self.sources: dict[str, MediaStreamTrack] = {}
        self.pcs: list[RTCPeerConnection] = []
        self.drains: list[asyncio.Future[None]] = []

    def _peer_connection(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        return pc

    async def publish(self, sdp: str) -> str:
        pc = self._peer_connection()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.sources[track.kind] = track
            self.drains.append(asyncio.ensure_future(drain(self.relay.subscribe(track, buffered=False))))

        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def play(self, sdp: str) -> str:
        pc = self._peer_connection()
        for kind, source in self.sources.items():
            transceiver = pc.addTransceiver(self.relay.subscribe(source, buffered=False), direction="sendonly")
            if kind == "video":
                transceiver.setCodecPreferences(video_capabilities(self.codec))
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    def stats(self) -> dict[str, Any]:
        return {"players": len(self.pcs) - 1 if self.pcs else 0}

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        for task in self.drains:
            task.cancel()


async def drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


async def serve(server: Server, out: TextIO) -> None:
    def reply(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    async def handle(request: dict[str, Any]) -> None:
        try:
            if request["op"] == "publish":
                reply({"id": request["id"], "sdp": await server.publish(request["sdp"])})
            elif request["op"] == "play":
                reply({"id": request["id"], "sdp": await server.play(request["sdp"])})
            elif request["op"] == "stats":
                reply({"id": request["id"], **server.stats()})
            else:
                reply({"id": request["id"], "error": f"unknown op {request['op']!r}"})
        except Exception as error:
            logger.exception("request %s failed", request.get("op"))
            reply({"id": request["id"], "error": repr(error)})

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    handlers: set[asyncio.Task[None]] = set()
    reply({"ready": True, "pid": os.getpid()})
    try:
        while line := await reader.readline():
            request = json.loads(line)
            if request.get("op") == "quit":
                break
            task = asyncio.create_task(handle(request))
            handlers.add(task)
            task.add_done_callback(handlers.discard)
    finally:
        for task in tuple(handlers):
            task.cancel()
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("passthrough", "relay", *RECORDING_VARIANTS), required=True)
    parser.add_argument("--codec", choices=("VP8", "H264"), default="VP8")
    parser.add_argument("--bitrate", type=int, default=1_000_000, help="relay encoders' bitrate, bit/s")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    # The protocol owns the real stdout; anything a library prints goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    use_host_address(HOST)
    server: Server
    if args.variant in RECORDING_VARIANTS:
        server = RecordingServer(args.variant, args.codec)
    elif args.variant == "passthrough":
        server = PassthroughServer(args.codec)
    else:
        server = RelayServer(args.codec, args.bitrate)
    asyncio.run(serve(server, out))


if __name__ == "__main__":
    main()
