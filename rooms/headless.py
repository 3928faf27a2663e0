"""A session without a WebSocket: a WHIP publisher or a WHEP player.

A WebSocket client's connection is what keeps its session alive and what
media nodes and rooms talk to. A WHIP or WHEP client has an HTTP exchange
instead, over in a moment, so this process keeps a stand-in: a channel of
its own that receives the media node's reports, the room's events and the
session's end, and a session in the live state registered to this process,
like a connection's.

Its presence is its media. It ends when its one stream or play ends
(the client closed its peer connection or ICE failed, the media never
came, the node died, someone unpublished it), when its room is ended or
removes it, when it is deleted (``DELETE`` on its resource, from any
process, through the live state), when the same identity joins again, and
with this process: a sweep anywhere drops the sessions of a process whose
heartbeat stopped. Nothing else holds it, so no ghost outlives its media,
and nothing is left of it here once it ends (its task, its channel, its
groups).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

from channels.layers import get_channel_layer

from ops import metrics
from ops.contexts import context_detached
from rooms import events, services, streams
from rooms.channel_layers import OVERFLOW_TYPE, ClosingChannelLayer
from rooms.live.context import process_context
from rooms.media import messages
from rooms.server_messages import StreamAnswer, StreamStatus
from rooms.session import ServiceError, Session

logger = logging.getLogger(__name__)

Role = Literal["publish", "play"]


@dataclass(frozen=True)
class MediaAnswer:
    """What the node said to the offer: an answer (``sdp``), or why not (``refusal``)."""

    stream: str | None
    sdp: str | None = None
    refusal: str | None = None
    detail: str = ""


class HeadlessSession:
    """One WHIP publisher's or WHEP player's stand-in connection in this process."""

    def __init__(self, channel_name: str, role: Role) -> None:
        self.channel_name = channel_name
        self.role = role
        self.session: Session | None = None
        # The room whose events it follows, and the stream it publishes or plays.
        self.room: str | None = None
        self.stream: str | None = None
        self._answer: asyncio.Future[MediaAnswer] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # Its session id (the resource of its URL), kept after the session ends.
        self.resource: str | None = None
        # Set once nothing of it is left in this process.
        self.stopped = asyncio.Event()

    @classmethod
    async def open(cls, role: Role) -> HeadlessSession:
        """A stand-in listening on a new channel (before any command names it)."""
        layer = get_channel_layer()
        assert layer is not None
        headless = cls(await layer.new_channel(), role)
        headless._task = asyncio.get_running_loop().create_task(
            headless._run(), name=f"headless-{role}", context=context_detached()
        )
        process_context().connections.add(headless)
        return headless

    # --- what the live state's loss needs (rooms.live_epoch) ---------------------

    def live_epoch(self) -> str | None:
        return self.session.epoch if self.session is not None else None

    async def state_lost(self) -> None:
        session = self._session_release()
        if session is not None:
            await services.session_state_lost(session=session)
        await self._stop()

    # --- the session's life ------------------------------------------------------

    def session_attach(self, session: Session) -> None:
        self.session = session
        self.resource = session.sid
        metrics.SESSIONS.inc()

    def _session_release(self) -> Session | None:
        session, self.session = self.session, None
        if session is not None:
            metrics.SESSIONS.dec()
        return session

    async def answer(self, timeout: float) -> MediaAnswer:
        """The node's answer to the publish or play sent on this session."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._answer), timeout)
        except TimeoutError:
            return MediaAnswer(stream=None, refusal="node_unavailable", detail="the media node did not answer")

    async def end(self) -> None:
        """End it from here: its rooms see it drop, and nothing of it is left."""
        session = self._session_release()
        if session is not None:
            if self.role == "play" and self.stream is not None and self.stream in session.plays:
                # The stream may have ended meanwhile, and its plays with it.
                with contextlib.suppress(ServiceError):
                    await streams.stream_stop(session=session, stream=self.stream, request_id=None)
            await services.session_close(session=session)
        await self._stop()

    async def _stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        process_context().connections.discard(self)
        if not self._answer.done():
            self._answer.set_result(MediaAnswer(stream=None, refusal="ended", detail="the session ended"))
        if self.room is not None and self.role == "play":
            await events.room_group_discard(self.room, self.channel_name)
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        layer = get_channel_layer()
        if isinstance(layer, ClosingChannelLayer):
            await layer.channel_close(self.channel_name)
        self.stopped.set()

    async def _run(self) -> None:
        layer = get_channel_layer()
        assert layer is not None
        try:
            while not self._closed:
                message = await layer.receive(self.channel_name)
                try:
                    if await self._handle(message):
                        await self.end()
                except Exception:
                    logger.exception("a headless %s session failed on %s; ending it", self.role, message.get("type"))
                    await self.end()
        finally:
            if not self._closed:
                # Cancelled from outside (the process is stopping): its rooms
                # must hear of it however it ends.
                await asyncio.shield(self.end())

    async def _handle(self, message: dict[str, Any]) -> bool:
        """Handle one message of the channel; True when the session is over."""
        kind = message.get("type")
        if kind == "session.end":
            # Ended elsewhere (deleted, replaced, resumed): it left its rooms there.
            self._session_release()
            await self._stop()
            return False
        if kind == OVERFLOW_TYPE:
            return True
        session = self.session
        if session is None:
            return False
        if kind == "media.report":
            return await self._media_report(session, message)
        if kind == "room.event":
            return self._room_event(session, message["event"])
        if kind == "client.send":
            frame = message["frame"]
            # A stream.status FAILED of its stream: another process ended it (its node died).
            return bool(frame.get("type") == "stream.status" and frame.get("stream") == self.stream
                        and frame.get("status") == "FAILED")
        return False

    async def _media_report(self, session: Session, message: dict[str, Any]) -> bool:
        try:
            report = messages.report_decode(message)
        except messages.NodeMessageError as error:
            logger.error("a media node report could not be read (%s): %s", error.reason, error.detail)
            return False
        detail = report.detail if isinstance(report, messages.FailedReport) else ""
        reply = await streams.node_report(session=session, report=report)
        if not self._answer.done():
            if isinstance(reply, StreamAnswer):
                self.stream = reply.stream.id
                self._answer.set_result(MediaAnswer(stream=reply.stream.id, sdp=reply.sdp))
            elif isinstance(reply, StreamStatus) and reply.status == "FAILED":
                self._answer.set_result(
                    MediaAnswer(stream=reply.stream, refusal=str(reply.info), detail=detail)
                )
                return True
            return False
        # Once answered, the session lasts as long as its one publish or play.
        if self.role == "publish":
            return not session.publishes
        return not session.plays

    def _room_event(self, session: Session, event: dict[str, Any]) -> bool:
        # Its stream was unpublished by someone else: a moderator removed it
        # (the kick takes it out of the room, then ends its streams), the
        # room was ended, the client deleted it on another process. Ending
        # at the kick or the room's end would race the moderator's leave.
        stream = event["stream"]["id"] if event["type"] == "room.unpublished" else None
        if stream is not None and (stream == self.stream or stream in session.publishes):
            session.stream_forget(stream)
            return True
        # A player is in no room: nobody leaves it on its behalf.
        return self.role == "play" and event["type"] == "room.finalized"
