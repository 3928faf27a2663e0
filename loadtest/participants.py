"""One simulated participant: its connection, its room, what it publishes
or plays, and the chat it sends and receives."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc import RTCPeerConnection, RTCSessionDescription

from loadtest.chat import ChatLedger
from loadtest.config import LoadConfig
from loadtest.errors import ErrorLog
from loadtest.media_clients import Subscription, publisher_offer
from loadtest.signaling import SignalingClient, SignalingError
from loadtest.tokens import access_token

Role = Literal["publisher", "subscriber"]
REQUEST_TIMEOUT_S = 15.0


@dataclass
class RunState:
    """What every participant of a run shares."""

    config: LoadConfig
    errors: ErrorLog = field(default_factory=ErrorLog)
    chat: ChatLedger = field(default_factory=ChatLedger)
    # Who is in each room now: the recipients a chat message should reach.
    rosters: dict[str, set[str]] = field(default_factory=dict)
    subscriptions: list[Subscription] = field(default_factory=list)


class Participant:
    def __init__(self, run: RunState, room: str, name: str, role: Role) -> None:
        self.run, self.room, self.name, self.role = run, room, name, role
        self.client: SignalingClient | None = None
        self.ice_servers: list[dict[str, Any]] = []
        self.video_codec = "VP8"
        self.connect_ms: float | None = None
        self.join_ms: float | None = None
        self.publish_ms: float | None = None
        self.publisher_pc: RTCPeerConnection | None = None
        self.playing: set[str] = set()
        self._status_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._leaving = False

    @property
    def joined(self) -> bool:
        return self.join_ms is not None

    def _error(self, code: str, detail: str = "") -> None:
        self.run.errors.add(code, self.name, detail)

    # --- Joining ---------------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the WebSocket and establish the session; SignalingError if the server refuses."""
        config = self.run.config
        started = time.monotonic()
        self.client = await SignalingClient.open(config.url, config.origin, self._on_event)
        if config.token_mode:
            ttl = int(config.setup_timeout_s * 3 + config.duration_s + 600)
            token = access_token(config.token_key, config.token_secret, identity=self.name, room=self.room,
                                 publish=self.role == "publisher", ttl_s=ttl)
            reply = await self.client.request("session.connect", REQUEST_TIMEOUT_S, token=token)
        else:
            reply = await self.client.request("session.connect", REQUEST_TIMEOUT_S, username=self.name)
        if reply.get("status") != "ESTABLISHED":
            reason = reply.get("reason") or reply.get("code") or reply.get("type")
            raise SignalingError(f"session_failed:{reason}",
                                 f"the server refused the session: {reason} {reply.get('message', '')}".strip())
        self.ice_servers = reply.get("ice_servers") or []
        self.connect_ms = (time.monotonic() - started) * 1000
        self._watch(self._watch_connection())

    async def join(self) -> dict[str, Any]:
        assert self.client is not None
        started = time.monotonic()
        state = await self.client.request("room.join", REQUEST_TIMEOUT_S, room=self.room)
        if state.get("type") != "room.state":
            raise SignalingError(f"room_failed:{state.get('code')}", f"join {self.room}: {state.get('message')}")
        self.join_ms = (time.monotonic() - started) * 1000
        self.video_codec = state.get("video_codec", "VP8")
        self.run.rosters.setdefault(self.room, set()).add(self.name)
        return state

    async def start(self) -> None:
        """Connect, join, and publish or play; every failure is counted, none is raised."""
        try:
            await self.connect()
            state = await self.join()
            if self.role == "publisher":
                await self.publish()
            else:
                for participant in state.get("participants", []):
                    for stream in participant.get("streams", []):
                        self._play_later(stream)
        except SignalingError as error:
            self._error(error.code, error.message)

    # --- Media -----------------------------------------------------------------------------------------------------

    async def publish(self) -> None:
        assert self.client is not None
        config = self.run.config
        pc, sdp = await publisher_offer(self.ice_servers, width=config.width, height=config.height, fps=config.fps,
                                        audio=config.audio, codec=self.video_codec)
        self.publisher_pc = pc
        started = time.monotonic()
        answer = await self.client.request("stream.publish", REQUEST_TIMEOUT_S, room=self.room, kind="camera", sdp=sdp)
        if answer.get("type") != "stream.answer":
            raise SignalingError(f"publish_failed:{answer.get('info') or answer.get('code')}", str(answer)[:300])
        stream = answer["stream"]["id"]
        waiter = self._status_waiter(stream)
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        try:
            async with asyncio.timeout(config.setup_timeout_s):
                status = await waiter
        except TimeoutError:
            raise SignalingError("publish_timeout", f"{stream} not PUBLISHING within "
                                 f"{config.setup_timeout_s:g} s") from None
        if status.get("status") != "PUBLISHING":
            raise SignalingError(f"publish_failed:{status.get('info')}", str(status)[:300])
        self.publish_ms = (time.monotonic() - started) * 1000

    def _play_later(self, stream: dict[str, Any]) -> None:
        if stream["participant"] == self.name or stream["id"] in self.playing or not stream.get("video", True):
            return
        self.playing.add(stream["id"])
        self._watch(self._play(stream))

    async def _play(self, stream: dict[str, Any]) -> None:
        assert self.client is not None
        subscription, sdp = await Subscription.offer(
            self.ice_servers, room=self.room, subscriber=self.name, publisher=stream["participant"],
            stream=stream["id"],
        )
        self.run.subscriptions.append(subscription)
        try:
            answer = await self.client.request("stream.play", REQUEST_TIMEOUT_S, stream=stream["id"], sdp=sdp)
        except SignalingError as error:
            self._error(error.code, f"play {stream['id']}: {error.message}")
            return
        if answer.get("type") != "stream.answer":
            self._error(f"play_failed:{answer.get('info') or answer.get('code')}", str(answer)[:300])
            return
        await subscription.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    def _status_waiter(self, stream: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._status_waiters[stream] = future
        return future

    # --- Chat ------------------------------------------------------------------------------------------------------

    def chat_soon(self) -> None:
        """Send one numbered public message (the reply is awaited aside, so the pace holds)."""
        if self.client is not None and self.joined and not self._leaving:
            self._watch(self._chat())

    async def _chat(self) -> None:
        assert self.client is not None
        ledger = self.run.chat
        sequence, text = ledger.sent(self.room, self.name, time.monotonic())
        try:
            reply = await self.client.request("room.message", REQUEST_TIMEOUT_S, room=self.room, text=text)
        except SignalingError as error:
            self._error(f"chat_{error.code}", error.message)
            return
        if reply.get("type") == "ok":
            ledger.accepted(sequence, frozenset(self.run.rosters.get(self.room, ())))
        else:
            ledger.refused_by_server(sequence)
            self._error(f"chat_refused:{reply.get('code')}", reply.get("message", ""))

    # --- Events ----------------------------------------------------------------------------------------------------

    def _on_event(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "room.message":
            self.run.chat.received(self.name, frame["message"]["text"], time.monotonic())
        elif kind == "room.published":
            if self.role == "subscriber":
                self._play_later(frame["stream"])
        elif kind == "stream.status":
            self._on_stream_status(frame)
        elif kind == "session.status" and frame.get("status") == "DISCONNECTED":
            self._error(f"disconnected:{frame.get('reason')}", str(frame)[:300])
        elif kind == "error":
            self._error(f"error:{frame.get('code')}", frame.get("message", ""))
        elif kind in ("room.left", "room.finalized") and not self._leaving:
            if kind == "room.finalized" or frame.get("reason") != "leave":
                self._error(f"{kind}:{frame.get('reason')}", str(frame)[:300])
            if kind == "room.left":
                self.run.rosters.get(self.room, set()).discard(frame["participant"]["name"])

    def _on_stream_status(self, frame: dict[str, Any]) -> None:
        waiter = self._status_waiters.pop(frame.get("stream", ""), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(frame)
        if frame.get("status") == "FAILED":
            self._error(f"stream_failed:{frame.get('info')}", str(frame)[:300])
        elif frame.get("status") in ("STOPPED", "UNPUBLISHED") and not self._leaving:
            self._error(f"stream_{str(frame.get('status')).lower()}", str(frame)[:300])

    async def _watch_connection(self) -> None:
        assert self.client is not None
        await self.client.closed.wait()
        if not self._leaving:
            self.run.rosters.get(self.room, set()).discard(self.name)
            self._error("connection_lost", self.client.close_reason)

    def _watch(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            self._error("client_error", f"{type(error).__name__}: {error}")

    # --- Leaving ---------------------------------------------------------------------------------------------------

    def stop_listening(self) -> None:
        """From now on, endings are the run's own doing, not errors."""
        self._leaving = True

    async def leave(self) -> None:
        self._leaving = True
        if self.client is not None and self.joined and not self.client.closed.is_set():
            with contextlib.suppress(SignalingError):
                await self.client.request("room.leave", REQUEST_TIMEOUT_S, room=self.room)
        if self.publisher_pc is not None:
            await self.publisher_pc.close()
        for task in list(self._tasks):
            task.cancel()
        if self.client is not None:
            await self.client.close()
