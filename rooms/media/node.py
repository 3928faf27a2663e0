"""A media node: owns the peer connections of the rooms pinned to it.

Web processes talk to it over the channel layer: they send requests to the
node's channel, and the node answers the requesting connection directly
(``client.send``) and tells rooms what changed (``room.published`` ...).
The embedded server runs one node inside each web process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiortc import RTCIceServer
from channels.layers import BaseChannelLayer
from django.conf import settings

from recording.node_records import NodeRecords
from rooms import events, history
from rooms.database import db_call
from rooms.live.contract import LiveState
from rooms.live.registry import StreamRegistry
from rooms.loops import cancelled
from rooms.media.ice import check_aioice_internals
from rooms.media.peer import MediaError, PlayedStream, PublishedStream, use_host_address, use_port_range
from rooms.media.tap import check_aiortc_internals
from rooms.timing import now_ms

logger = logging.getLogger(__name__)


class MediaNode:
    def __init__(self, layer: BaseChannelLayer, *, registry: StreamRegistry, live_state: LiveState) -> None:
        self.layer = layer
        self.registry = registry
        self.live_state = live_state
        self.channel = ""
        self.published: dict[str, PublishedStream] = {}
        # (stream id, player channel) -> the player's connection
        self.played: dict[tuple[str, str], PlayedStream] = {}
        self._task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.records = NodeRecords()

    async def start(self) -> None:
        check_aiortc_internals()
        check_aioice_internals()
        use_host_address(settings.MEDIA_HOST_IP)
        if settings.MEDIA_UDP_PORTS:
            first, last = settings.MEDIA_UDP_PORTS
            use_port_range(asyncio.get_running_loop(), settings.MEDIA_HOST_IP, first, last)
        self.channel = await self.layer.new_channel("media.node.")
        await self.registry.node_heartbeat(self.channel, now_ms())
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="media-node")
        self._heartbeat_task = loop.create_task(self._heartbeat(), name="media-node-heartbeat")

    async def _heartbeat(self) -> None:
        while not cancelled():
            await asyncio.sleep(settings.HEARTBEAT_INTERVAL_MS / 1000)
            try:
                await self.registry.node_heartbeat(self.channel, now_ms())
            except Exception:
                logger.exception("media node heartbeat failed")

    async def shutdown(self) -> None:
        """Stop serving: every stream of this node ends, as if unpublished."""
        from rooms.streams import stream_end

        for task in (self._task, self._heartbeat_task):
            if task is not None:
                task.cancel()
        for record in await self.registry.node_streams(self.channel):
            await stream_end(record, publisher_info="node_stopped")
        for published in list(self.published.values()):
            await published.close()
        await self.records.finish_all()
        await self.registry.node_forget(self.channel)

    async def _run(self) -> None:
        while not cancelled():
            message = await self.layer.receive(self.channel)
            # Each request in its own task: an offer takes ICE gathering time
            # and must not hold up other rooms' requests.
            task = asyncio.ensure_future(self._handle(message))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _handle(self, message: dict[str, Any]) -> None:
        handler = getattr(self, "on_" + message["type"].replace("media.", "").replace(".", "_"), None)
        if handler is None:
            logger.warning("media node got unknown request %s", message["type"])
            return
        try:
            await handler(message)
        except Exception:
            logger.exception("media request %s failed", message["type"])

    async def _tell(self, channel: str, frame: dict[str, Any]) -> None:
        await self.layer.send(channel, {"type": "client.send", "frame": frame})

    @staticmethod
    def _ice_servers() -> list[RTCIceServer]:
        servers: list[dict[str, Any]] = settings.ICE_SERVERS
        return [
            RTCIceServer(urls=server["urls"], username=server.get("username"), credential=server.get("credential"))
            for server in servers
        ]

    # --- requests ----------------------------------------------------------------

    async def on_publish(self, message: dict[str, Any]) -> None:
        stream = message["stream"]
        stream_id, reply_to, request_id = stream["id"], message["reply_to"], message["request_id"]

        def first_media() -> None:
            self._spawn(self._published(message))

        try:
            published, answer = await PublishedStream.accept(
                stream_id=stream_id,
                offer_sdp=message["sdp"],
                video_codec=settings.ROOM_VIDEO_CODEC,
                ice_servers=self._ice_servers(),
                on_first_media=first_media,
            )
        except MediaError as error:
            await self.registry.stream_remove(stream_id)
            await self._tell(
                reply_to,
                {"type": "stream.status", "re": request_id, "stream": None, "status": "FAILED", "info": error.info},
            )
            return
        self.published[stream_id] = published
        if message["record"]:
            self.records.start(node=self.channel, message=message, published=published)
        published.pc.on("connectionstatechange", lambda: self._watch_publisher(message, published))
        await self._tell(reply_to, {"type": "stream.answer", "re": request_id, "stream": stream, "sdp": answer})
        self._spawn(self._expect_media(message, published))

    async def _expect_media(self, message: dict[str, Any], published: PublishedStream) -> None:
        await asyncio.sleep(settings.MEDIA_START_TIMEOUT_MS / 1000)
        if not published.media_started and self.published.get(published.stream_id) is published:
            await self._publisher_failed(message, "no_media")

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    def _watch_publisher(self, message: dict[str, Any], published: PublishedStream) -> None:
        # Our own close (unpublish) removes the stream first; a connection
        # that fails or is closed by the publisher ends a stream still here.
        state = published.pc.connectionState
        if state in ("failed", "closed") and self.published.get(published.stream_id) is published:
            self._spawn(self._publisher_failed(message, "ice_failed" if state == "failed" else None))

    async def _publisher_failed(self, message: dict[str, Any], info: str | None) -> None:
        """End a stream the publisher can no longer feed; tell it why if ``info``."""
        from rooms.streams import stream_end

        record = await self.registry.stream_get(message["stream"]["id"])
        if record is not None:
            await stream_end(record, publisher_info=info)

    async def _published(self, message: dict[str, Any]) -> None:
        stream = message["stream"]
        published = self.published.get(stream["id"])
        await db_call(history.stream_record_start)(
            live_id=message["room_id"], session=message["session"], login=stream["participant"],
            stream_id=stream["id"], kind=stream["kind"], record=message["record"],
            codec="+".join(published.codecs.values()) if published else "",
        )
        await self._tell(message["reply_to"], {"type": "stream.status", "stream": stream["id"], "status": "PUBLISHING"})
        seq = await self.live_state.room_event_seq(message["room"])
        await events.room_event_send(
            message["room"], {"type": "room.published", "room": message["room"], "stream": stream}, seq=seq
        )

    async def on_play(self, message: dict[str, Any]) -> None:
        stream_id, reply_to, request_id = message["stream"]["id"], message["reply_to"], message["request_id"]
        published = self.published.get(stream_id)
        if published is None:
            await self._tell(reply_to, {"type": "stream.status", "re": request_id, "stream": stream_id,
                                        "status": "FAILED", "info": "unknown_stream"})
            return
        previous = self.played.pop((stream_id, reply_to), None)
        if previous is not None:
            await previous.close()

        def first_frame() -> None:
            self._spawn(self._tell(reply_to, {"type": "stream.status", "stream": stream_id, "status": "PLAYING"}))

        try:
            played, answer = await PlayedStream.accept(
                published=published,
                offer_sdp=message["sdp"],
                video_codec=settings.ROOM_VIDEO_CODEC,
                ice_servers=self._ice_servers(),
                on_first_frame=first_frame,
            )
        except MediaError as error:
            await self._tell(reply_to, {"type": "stream.status", "re": request_id, "stream": stream_id,
                                        "status": "FAILED", "info": error.info})
            return
        self.played[(stream_id, reply_to)] = played
        played.pc.on("connectionstatechange", lambda: self._watch_player(stream_id, reply_to, played))
        self._apply_mute(played, message["stream"]["muted"])
        await self._tell(reply_to, {"type": "stream.answer", "re": request_id, "stream": message["stream"],
                                    "sdp": answer})

    def _watch_player(self, stream_id: str, player: str, played: PlayedStream) -> None:
        if played.pc.connectionState == "failed" and self.played.get((stream_id, player)) is played:
            del self.played[(stream_id, player)]
            self._spawn(self._tell(player, {"type": "stream.status", "stream": stream_id, "status": "FAILED",
                                            "info": "ice_failed"}))
            self._spawn(played.close())

    async def on_stop(self, message: dict[str, Any]) -> None:
        played = self.played.pop((message["stream"], message["player"]), None)
        if played is not None:
            await played.close()

    async def on_stop_player(self, message: dict[str, Any]) -> None:
        for stream_id in message["streams"]:
            played = self.played.pop((stream_id, message["player"]), None)
            if played is not None:
                await played.close()

    async def on_unpublish(self, message: dict[str, Any]) -> None:
        stream_id = message["stream"]
        published = self.published.pop(stream_id, None)
        for key in [key for key in self.played if key[0] == stream_id]:
            played = self.played.pop(key)
            await self._tell(key[1], {"type": "stream.status", "stream": stream_id, "status": "STOPPED"})
            await played.close()
        if published is not None:
            await published.close()
        await self.records.finish(stream_id)

    async def on_mute(self, message: dict[str, Any]) -> None:
        stream_id, muted = message["stream"], message["muted"]
        for (played_id, _), played in self.played.items():
            if played_id == stream_id:
                self._apply_mute(played, muted)

    @staticmethod
    def _apply_mute(played: PlayedStream, muted: dict[str, bool]) -> None:
        for kind, track in played.tracks.items():
            if muted.get(kind):
                track.pause()
            else:
                track.resume()
