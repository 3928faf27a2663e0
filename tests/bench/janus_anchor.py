"""Janus VideoRoom as the forwarding benchmark's side-by-side anchor (``forwarding.py --anchor janus``).

Janus (Debian's ``janus`` 1.1.x, a C SFU) ignores loopback interfaces when it
gathers ICE candidates. The benchmark therefore runs in a network namespace
of its own: ``lo`` up, and an ``ifb`` device ``jb0`` that carries
127.0.0.1/32 (IPv6 off), to which Janus's ``ice_enforce_list`` restricts it.
Janus then offers exactly one candidate, 127.0.0.1, and the kernel routes it
through the namespace's ``lo``. The whole benchmark (driver, our server,
MediaRelay, Janus) re-runs itself inside that namespace, so every variant
measures under the same conditions; the namespace is deleted afterwards,
also when the run fails.

``JanusServer`` starts one Janus process per measurement (as the other
variants get a fresh server process) with only the VideoRoom plugin and the
WebSocket transport on 127.0.0.1, creates a room with the publisher's codec
and bitrate (``fir_freq`` 0: no periodic keyframe requests), publishes the
same aiortc publisher into it and joins the same counting subscribers: a
subscriber ``join``s, Janus offers, the subscriber answers with ``start``.
First frame is timed from the ``join`` (our players: from the play offer).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription

from rooms.media.peer import video_capabilities
from rooms.media.tap import EncodedFrameTap
from tests.bench.report import log
from tests.bench.sfu_driver import (
    READY_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    STOP_TIMEOUT_S,
    Subscriber,
    TexturedVideoTrack,
    check_loopback,
    peer_connection,
    wait_until,
)
from tests.media_tracks import ToneAudioTrack

NAMESPACE_ENV = "FORWARDING_BENCH_NETNS"
DEVICE = "jb0"
LIBRARIES = Path("/usr/lib/x86_64-linux-gnu/janus")
ROOM = 1234
KEEPALIVE_S = 20.0
CONNECT_TIMEOUT_S = 10.0


# --- The namespace -------------------------------------------------------------------------------------------------


def janus_installed() -> None:
    """Install Debian's janus if it is missing."""
    if shutil.which("janus") is None:
        log("installing janus (apt-get install -y janus) ...")
        subprocess.run(["apt-get", "install", "-y", "janus"], check=True, stdout=subprocess.DEVNULL)


def run_in_namespace(argv: Sequence[str]) -> int:
    """Run this benchmark again inside a network namespace made for it; remove the namespace after."""
    janus_installed()
    name = f"fwdbench-{os.getpid()}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True)

    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", DEVICE, "type", "ifb")
        subprocess.run(["ip", "netns", "exec", name, "sysctl", "-q", "-w", f"net.ipv6.conf.{DEVICE}.disable_ipv6=1"],
                       check=False)
        ip("-n", name, "addr", "add", "127.0.0.1/32", "dev", DEVICE)
        ip("-n", name, "link", "set", DEVICE, "up")
        command = ["ip", "netns", "exec", name, sys.executable, str(Path(__file__).with_name("forwarding.py")), *argv]
        return subprocess.run(command, env={**os.environ, NAMESPACE_ENV: name}, check=False).returncode
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


# --- One Janus process ---------------------------------------------------------------------------------------------


def write_config(folder: Path, port: int) -> Path:
    """A Janus configuration with only the VideoRoom plugin and the WebSocket transport."""
    for kind, library in (("plugins", "libjanus_videoroom.so"), ("transports", "libjanus_websockets.so")):
        (folder / kind).mkdir()
        (folder / kind / library).symlink_to(LIBRARIES / kind / library)
    for kind in ("events", "loggers"):
        (folder / kind).mkdir()
    (folder / "janus.jcfg").write_text(f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{folder}/plugins"
    transports_folder = "{folder}/transports"
    events_folder = "{folder}/events"
    loggers_folder = "{folder}/loggers"
    debug_level = 3
    session_timeout = 120
}}
media: {{
    ipv6 = false
}}
nat: {{
    ice_enforce_list = "{DEVICE}"
}}
""")
    (folder / "janus.transport.websockets.jcfg").write_text(f"""general: {{
    json = "plain"
    ws = true
    ws_port = {port}
    ws_ip = "127.0.0.1"
    wss = false
}}
admin: {{
    admin_ws = false
}}
""")
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")
    return folder / "janus.jcfg"


class JanusServer:
    """A Janus process, its WebSocket session, and the room the benchmark publishes into."""

    def __init__(self, process: asyncio.subprocess.Process, folder: Path, log_path: Path) -> None:
        self.process = process
        self.pid = process.pid
        self.folder = folder
        self.log_path = log_path
        self.feed: int | None = None
        self.codec = "VP8"
        self._ws: Any = None
        self._session = 0
        self._transactions = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def start(cls, codec: str, bitrate: int, log_path: Path, folder: Path) -> JanusServer:
        if not os.environ.get(NAMESPACE_ENV):
            raise RuntimeError("the janus anchor runs inside the benchmark's network namespace (--anchor janus)")
        port = 8188
        config = write_config(folder, port)
        with log_path.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                "janus", "-C", str(config), "-F", str(folder), stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file, stderr=log_file,
            )
        server = cls(process, folder, log_path)
        server.codec = codec
        try:
            await server._connect(f"ws://127.0.0.1:{port}")
            handle = await server.attach()
            reply = await server.message(handle, {
                "request": "create", "room": ROOM, "publishers": 64, "videocodec": codec.lower(),
                "audiocodec": "opus", "bitrate": bitrate, "fir_freq": 0, "notify_joining": False,
            })
            if reply.get("plugindata", {}).get("data", {}).get("videoroom") != "created":
                raise RuntimeError(f"janus did not create the room: {reply}")
        except BaseException:
            await server.stop()
            raise
        return server

    async def _connect(self, url: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                self._ws = await websockets.connect(url, subprotocols=["janus-protocol"], max_size=None)  # type: ignore[list-item]
                break
            except OSError:
                if time.monotonic() > deadline or self.process.returncode is not None:
                    raise RuntimeError(f"janus did not listen on {url} (log: {self.log_path})") from None
                await asyncio.sleep(0.1)
        self._tasks.append(asyncio.create_task(self._read()))
        reply = await self._send({"janus": "create"})
        self._session = int(reply["data"]["id"])
        self._tasks.append(asyncio.create_task(self._keepalive()))

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self._ws:
                message = json.loads(raw)
                if message.get("janus") == "ack":
                    continue  # the event follows
                future = self._waiting.pop(str(message.get("transaction", "")), None)
                if future is not None and not future.done():
                    future.set_result(message)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(RuntimeError(f"janus closed the WebSocket (log: {self.log_path})"))

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            await self._ws.send(json.dumps({"janus": "keepalive", "session_id": self._session,
                                            "transaction": f"k{next(self._transactions)}"}))

    async def _send(self, message: dict[str, Any]) -> dict[str, Any]:
        transaction = str(next(self._transactions))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = future
        if self._session:
            message = {"session_id": self._session, **message}
        await self._ws.send(json.dumps({**message, "transaction": transaction}))
        reply = await asyncio.wait_for(future, REQUEST_TIMEOUT_S)
        if reply.get("janus") == "error" or "error" in reply.get("plugindata", {}).get("data", {}):
            raise RuntimeError(f"janus: {reply} (log: {self.log_path})")
        return reply

    async def attach(self) -> int:
        reply = await self._send({"janus": "attach", "plugin": "janus.plugin.videoroom"})
        return int(reply["data"]["id"])

    async def message(self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"janus": "message", "handle_id": handle, "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        return await self._send(message)

    async def _candidates_done(self, handle: int) -> None:
        # aiortc puts its candidates in the SDP and does not trickle.
        await self._ws.send(json.dumps({"janus": "trickle", "session_id": self._session, "handle_id": handle,
                                        "candidate": {"completed": True},
                                        "transaction": f"t{next(self._transactions)}"}))

    # --- what the benchmark does with it ------------------------------------------------------------------------------

    async def publish(self, audio: bool) -> tuple[RTCPeerConnection, TexturedVideoTrack]:
        handle = await self.attach()
        joined = await self.message(handle, {"request": "join", "ptype": "publisher", "room": ROOM, "display": "pub"})
        self.feed = int(joined["plugindata"]["data"]["id"])
        pc = peer_connection()
        video = TexturedVideoTrack()
        pc.addTransceiver(video, direction="sendonly").setCodecPreferences(video_capabilities(self.codec))
        if audio:
            pc.addTransceiver(ToneAudioTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        check_loopback(pc.localDescription.sdp, "publisher offer")
        reply = await self.message(handle, {"request": "publish", "audio": audio, "video": True},
                                   jsep={"type": "offer", "sdp": pc.localDescription.sdp})
        await self._candidates_done(handle)
        answer = reply["jsep"]["sdp"]
        check_loopback(answer, "janus publish answer")
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        if not await wait_until(lambda: pc.connectionState == "connected", CONNECT_TIMEOUT_S):
            raise RuntimeError(f"the publisher did not connect to janus ({pc.connectionState})")
        return pc, video

    async def join(self, audio: bool) -> Subscriber:
        handle = await self.attach()
        pc = peer_connection()
        subscriber = Subscriber(pc)
        subscriber.offered_at = time.monotonic()
        reply = await self.message(handle, {"request": "join", "ptype": "subscriber", "room": ROOM, "feed": self.feed})
        offer = reply["jsep"]["sdp"]
        check_loopback(offer, "janus subscribe offer")
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        # Before the answer: the receivers' decoder threads start once it is applied.
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":
                EncodedFrameTap.install(transceiver.receiver).add_sink(subscriber.on_video)
            elif transceiver.kind == "audio":
                if audio:
                    EncodedFrameTap.install(transceiver.receiver).add_sink(subscriber.on_audio)
                else:
                    EncodedFrameTap.install(transceiver.receiver)
        await pc.setLocalDescription(await pc.createAnswer())
        check_loopback(pc.localDescription.sdp, "subscriber answer")
        await self.message(handle, {"request": "start", "room": ROOM},
                           jsep={"type": "answer", "sdp": pc.localDescription.sdp})
        await self._candidates_done(handle)
        return subscriber

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log(f"janus {self.pid} did not exit; killing it")
                self.process.kill()
                await self.process.wait()
