"""A media node: owns the peer connections of the rooms pinned to it.

It takes the commands of ``rooms.media.messages`` on its channel and sends
reports to the channel each command named in ``reply_to``; it keeps no
history and tells no room anything, that is the web side's work
(``rooms.streams``). Sinks plug into its streams through
``rooms.media.signals.stream_started``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc import RTCIceServer
from channels.layers import BaseChannelLayer

from ops import metrics
from ops.contexts import context_detached
from ops.logs import log_context
from rooms.media import messages
from rooms.media.config import NodeConfig
from rooms.media.ice import answer_addresses_public, check_aioice_internals
from rooms.media.loops import cancelled
from rooms.media.metering import TrafficMeter
from rooms.media.peer import MediaError, PlayedStream, PublishedStream, use_host_address, use_port_range
from rooms.media.rtp_leg import check_leg_internals
from rooms.media.signals import stream_started
from rooms.media.sink import StreamSink
from rooms.media.speakers import PublishedAudio, SpeakersWatch
from rooms.media.tap import check_aiortc_internals
from rooms.media.timing import now_ms
from rooms.media.usage import CpuUsage

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Publication:
    """A stream this node publishes: the command that asked for it, its
    connection, and the sinks fed by it."""

    command: messages.PublishCommand
    stream: PublishedStream
    sinks: list[StreamSink] = field(default_factory=list)
    # Record reports a sink gave before the answer left: they follow it.
    reports_before_answer: list[messages.RecordReport] | None = field(default_factory=list)
    # Muted audio is no speaker (media.mute).
    audio_muted: bool = False

    def audio(self) -> PublishedAudio:
        command = self.command
        return PublishedAudio(
            room=command.room, reply_to=command.reply_to, stream=command.stream, participant=command.participant,
            level=self.stream.audio_level, muted=self.audio_muted,
        )


class MediaNode:
    def __init__(self, layer: BaseChannelLayer, config: NodeConfig) -> None:
        self.layer = layer
        self.config = config
        self.channel = ""
        self.publications: dict[str, Publication] = {}
        # (stream id, player channel) -> the player's connection
        self.played: dict[tuple[str, str], PlayedStream] = {}
        self._task: asyncio.Task[None] | None = None
        self._speakers_task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Future[None]] = set()
        self.meter = TrafficMeter()
        self.cpu = CpuUsage()
        self._ice_servers = [
            RTCIceServer(urls=server["urls"], username=server.get("username"), credential=server.get("credential"))
            for server in config.ice_servers
        ]

    async def start(self) -> None:
        check_aiortc_internals()
        check_leg_internals()
        check_aioice_internals()
        use_host_address(self.config.host_ip)
        if self.config.udp_ports:
            first, last = self.config.udp_ports
            use_port_range(asyncio.get_running_loop(), self.config.host_ip, first, last)
        self.channel = await self.layer.new_channel("media.node.")
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="media-node", context=context_detached())
        if self.config.speakers_interval_ms > 0:
            self._speakers_task = loop.create_task(
                self._speakers_run(SpeakersWatch(self.config.speakers_interval_ms)), name="media-node-speakers",
                context=context_detached(),
            )

    def load(self) -> messages.LoadReport:
        """The node's heartbeat: what it serves right now, and the CPU it
        used since the previous one (so: one call per heartbeat)."""
        rooms = {publication.command.room for publication in self.publications.values()}
        return messages.LoadReport(
            node=self.channel, published=len(self.publications), played=len(self.played), at_ms=now_ms(),
            rooms=len(rooms), cpu=self.cpu.share(), host=socket.gethostname(), pid=os.getpid(),
        )

    def metrics_read(self) -> None:
        """Add the traffic since the last reading to the metrics (once per heartbeat)."""
        publications = list(self.publications.values())
        self.meter.read(
            (publication.stream for publication in publications), self.played.values(),
            (sink for publication in publications for sink in publication.sinks),
        )

    async def shutdown(self) -> None:
        """Stop serving: every publisher hears ``node_stopped``, every sink finishes."""
        for task in (self._task, self._speakers_task):
            if task is not None:
                task.cancel()
        publications = list(self.publications.values())
        self.publications.clear()
        for publication in publications:
            command = publication.command
            await self._report(
                command.reply_to,
                messages.FailedReport(room=command.room, stream=command.stream, reason="node_stopped"),
            )
        for publication in publications:
            await publication.stream.close()
        self.played.clear()
        await asyncio.gather(*(self._sinks_close(publication) for publication in publications))

    async def _run(self) -> None:
        while not cancelled():
            raw = await self.layer.receive(self.channel)
            # Each command in its own task: an offer takes ICE gathering time
            # and must not hold up other rooms' commands.
            self._spawn(self._handle(raw))

    async def _speakers_run(self, watch: SpeakersWatch) -> None:
        while not cancelled():
            await asyncio.sleep(watch.interval_ms / 1000)
            try:
                reports = watch.read(publication.audio() for publication in self.publications.values())
            except Exception:
                logger.exception("reading the speakers failed")
                continue
            for channel, report in reports:
                self._spawn(self._report(channel, report))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _handle(self, raw: dict[str, Any]) -> None:
        try:
            command = messages.command_decode(raw)
        except messages.NodeMessageError as error:
            logger.error("media node refuses a %r command (%s): %s", raw.get("type"), error.reason, error.detail)
            refusal = messages.command_refusal(raw, error)
            if refusal is not None:
                await self._report(*refusal)
            return
        # Each command runs in a task of its own: the context stays with it,
        # and with the tasks aiortc starts for its peer connection.
        with log_context(room=getattr(command, "room", None), stream=getattr(command, "stream", None),
                         node=self.channel):
            await self._serve(command)

    async def _serve(self, command: messages.Command) -> None:
        try:
            match command:
                case messages.PublishCommand():
                    await self._publish(command)
                case messages.PlayCommand():
                    await self._play(command)
                case messages.StopCommand():
                    await self._plays_close(command.player, [command.stream])
                case messages.StopPlayerCommand():
                    await self._plays_close(command.player, command.streams)
                case messages.UnpublishCommand():
                    await self._unpublish(command.stream)
                case messages.MuteCommand():
                    self._mute(command.stream, command.muted)
        except Exception:
            logger.exception("media command %s failed", command.type)

    async def _report(self, channel: str, report: messages.Report) -> None:
        await self.layer.send(channel, messages.message_encode(report))

    # --- publishing ------------------------------------------------------------------

    async def _publish(self, command: messages.PublishCommand) -> None:
        def first_media() -> None:
            publication = self.publications.get(command.stream)
            if publication is not None:
                logger.info("stream publishing: first media arrived")
                self._spawn(self._report(command.reply_to, messages.PublishingReport(
                    room=command.room, stream=command.stream, codecs=publication.stream.codecs,
                )))

        try:
            published, answer = await PublishedStream.accept(
                stream_id=command.stream,
                offer_sdp=command.sdp,
                video_codec=self.config.video_codec,
                ice_servers=self._ice_servers,
                candidates=self.config.candidates,
                on_first_media=first_media,
                max_video_kbps=self.config.max_video_kbps,
                min_video_kbps=self.config.min_video_kbps,
            )
            answer = answer_addresses_public(answer, self.config.public_ip)
        except MediaError as error:
            await self._report(command.reply_to, messages.FailedReport(
                request_id=command.request_id, room=command.room, stream=command.stream, reason=error.info,
                detail=str(error),
            ))
            return
        publication = Publication(command, published)

        def record_status(
            status: Literal["FAILED", "STOPPED"], reason: Literal["disk_quota", "disk_full"], detail: str
        ) -> None:
            report = messages.RecordReport(
                room=command.room, stream=command.stream, status=status, reason=reason, detail=detail,
            )
            if publication.reports_before_answer is not None:
                publication.reports_before_answer.append(report)
            elif self._current(publication):
                self._spawn(self._report(command.reply_to, report))

        # Before the answer leaves: a sink must see the stream's first frame.
        for _, response in stream_started.send_robust(
            sender=MediaNode, node=self.channel, command=command, media=published, record_status=record_status
        ):
            if response is not None and not isinstance(response, Exception):
                publication.sinks.append(response)
        self.publications[command.stream] = publication
        published.pc.on("connectionstatechange", lambda: self._watch_publisher(publication))
        await self._report(command.reply_to, messages.AnswerReport(
            request_id=command.request_id, room=command.room, stream=command.stream, sdp=answer,
            codecs=published.codecs,
        ))
        reports, publication.reports_before_answer = publication.reports_before_answer or [], None
        for report in reports:
            await self._report(command.reply_to, report)
        logger.info("publish accepted (%s)%s", _codecs_text(published.codecs), ", recorded" if command.record else "")
        self._spawn(self._expect_media(publication))

    async def _expect_media(self, publication: Publication) -> None:
        await asyncio.sleep(self.config.media_start_timeout_ms / 1000)
        if not publication.stream.media_started and self._current(publication):
            command = publication.command
            await self._report(command.reply_to, messages.FailedReport(
                room=command.room, stream=command.stream, reason="no_media",
                detail=f"no media within {self.config.media_start_timeout_ms} ms",
            ))

    def _current(self, publication: Publication) -> bool:
        return self.publications.get(publication.command.stream) is publication

    def _watch_publisher(self, publication: Publication) -> None:
        # Our own close (unpublish) removes the stream first; a connection
        # that fails or is closed by the publisher ends a stream still here,
        # once the web side hears of it and unpublishes.
        state = publication.stream.pc.connectionState
        if state not in ("failed", "closed") or not self._current(publication):
            return
        command = publication.command
        report: messages.Report
        if state == "failed":
            report = messages.FailedReport(room=command.room, stream=command.stream, reason="ice_failed")
        else:
            report = messages.EndedReport(room=command.room, stream=command.stream)
        self._spawn(self._report(command.reply_to, report))

    async def _unpublish(self, stream_id: str) -> None:
        publication = self.publications.pop(stream_id, None)
        if publication is not None:
            logger.info("stream unpublished")
            self.meter.published_read(publication.stream)
        for key in [key for key in self.played if key[0] == stream_id]:
            played = self.played.pop(key)
            self.meter.played_read(played)
            if publication is not None:
                await self._report(key[1], messages.EndedReport(
                    room=publication.command.room, stream=stream_id, player=key[1],
                ))
            await played.close()
        if publication is not None:
            await publication.stream.close()
            await self._sinks_close(publication)

    @staticmethod
    async def _sinks_close(publication: Publication) -> None:
        for sink in publication.sinks:
            try:
                await sink.close()
            except Exception:
                logger.exception("a sink of stream %s failed to close", publication.command.stream)

    # --- playing ---------------------------------------------------------------------

    async def _play(self, command: messages.PlayCommand) -> None:
        player = command.reply_to

        def failed(reason: messages.FailureReason, detail: str = "") -> messages.FailedReport:
            return messages.FailedReport(
                request_id=command.request_id, room=command.room, stream=command.stream, player=player,
                reason=reason, detail=detail,
            )

        publication = self.publications.get(command.stream)
        if publication is None:
            await self._report(player, failed("unknown_stream", "this node publishes no such stream"))
            return
        previous = self.played.pop((command.stream, player), None)
        if previous is not None:
            await previous.close()

        asked_at = time.monotonic()

        def first_frame() -> None:
            metrics.FIRST_FRAME_SECONDS.observe(time.monotonic() - asked_at)
            logger.info("playing: first frame sent to player %s", player)
            self._spawn(self._report(player, messages.PlayingReport(
                room=command.room, stream=command.stream, player=player,
            )))

        def bandwidth(paused: bool) -> None:
            logger.info("video %s for player %s: its link %s", "paused" if paused else "resumed", player,
                        "cannot carry the room's floor" if paused else "recovered")
            self._spawn(self._report(player, messages.BandwidthReport(
                room=command.room, stream=command.stream, player=player, paused=paused,
            )))

        try:
            played, answer = await PlayedStream.accept(
                published=publication.stream,
                offer_sdp=command.sdp,
                video_codec=self.config.video_codec,
                ice_servers=self._ice_servers,
                candidates=self.config.candidates,
                on_first_frame=first_frame,
                on_bandwidth=bandwidth,
            )
            answer = answer_addresses_public(answer, self.config.public_ip)
        except MediaError as error:
            await self._report(player, failed(error.info, str(error)))
            return
        self.played[(command.stream, player)] = played
        played.pc.on("connectionstatechange", lambda: self._watch_player(command, played))
        self._apply_mute(played, command.muted)
        logger.info("play accepted for player %s", player)
        await self._report(player, messages.AnswerReport(
            request_id=command.request_id, room=command.room, stream=command.stream, player=player, sdp=answer,
            codecs=publication.stream.codecs,
        ))

    def _watch_player(self, command: messages.PlayCommand, played: PlayedStream) -> None:
        key = (command.stream, command.reply_to)
        if played.pc.connectionState == "failed" and self.played.get(key) is played:
            del self.played[key]
            self._spawn(self._report(command.reply_to, messages.FailedReport(
                room=command.room, stream=command.stream, player=command.reply_to, reason="ice_failed",
            )))
            self._spawn(played.close())

    async def _plays_close(self, player: str, stream_ids: list[str]) -> None:
        for stream_id in stream_ids:
            played = self.played.pop((stream_id, player), None)
            if played is not None:
                self.meter.played_read(played)
                await played.close()

    def _mute(self, stream_id: str, muted: messages.Muted) -> None:
        publication = self.publications.get(stream_id)
        if publication is not None:
            publication.audio_muted = muted.audio
        for (played_id, _), played in self.played.items():
            if played_id == stream_id:
                self._apply_mute(played, muted)

    @staticmethod
    def _apply_mute(played: PlayedStream, muted: messages.Muted) -> None:
        for kind, track in played.tracks.items():
            if getattr(muted, kind, False):
                track.pause()
            else:
                track.resume()


def _codecs_text(codecs: dict[str, str]) -> str:
    return ", ".join(f"{kind} {codec}" for kind, codec in sorted(codecs.items())) or "no media"
