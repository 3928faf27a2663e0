"""A media node driven by its commands alone, with real aiortc peers: what
it reports, and the sinks that plug into its streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiortc import RTCSessionDescription
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtcpSrPacket
from channels.layers import InMemoryChannelLayer

from rooms.media import messages
from rooms.media.node import MediaNode
from rooms.media.peer import use_host_address
from rooms.media.signals import stream_started
from rooms.media.sink import PublishedMedia
from tests.media_clients import Publisher, loopback_peer, new_player, publisher_offer
from tests.media_tracks import CounterVideoTrack
from tests.rooms.media.test_messages import loopback_config, report_on


@dataclass
class CountingSink:
    media: PublishedMedia
    frames: dict[str, int] = field(default_factory=lambda: {"audio": 0, "video": 0})
    sender_reports: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def attach(self) -> None:
        for kind in self.media.codecs:
            self.media.frames_watch(kind, lambda codec, frame, kind=kind: self.count(kind, codec, frame))
            self.media.sender_reports_watch(kind, self.on_report)

    def count(self, kind: str, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        self.frames[kind] += 1
        self.changed.set()

    def on_report(self, packet: RtcpSrPacket) -> None:
        self.sender_reports += 1
        self.changed.set()

    async def close(self) -> None:
        self.closed.set()


@dataclass
class Harness:
    layer: InMemoryChannelLayer
    node: MediaNode
    sinks: list[CountingSink]

    async def client(self) -> str:
        return await self.layer.new_channel("client.")

    async def send(self, command: messages.NodeMessage) -> None:
        await self.layer.send(self.node.channel, messages.message_encode(command))

    async def publish(self, client: str, stream: str = "s1") -> tuple[Publisher, messages.AnswerReport]:
        publisher, offer = await publisher_offer()
        await self.send(messages.PublishCommand(
            request_id=f"p-{stream}", reply_to=client, room="r", room_id="live-r", stream=stream,
            participant="alice", kind="camera", sdp=offer,
        ))
        answer = await report_on(self.layer, client)
        assert isinstance(answer, messages.AnswerReport), answer
        await publisher.pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
        assert isinstance(await report_on(self.layer, client), messages.PublishingReport)
        return publisher, answer


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    use_host_address("127.0.0.1")
    layer = InMemoryChannelLayer()
    node = MediaNode(layer, loopback_config(media_start_timeout_ms=1000))
    sinks: list[CountingSink] = []

    def plug(sender: Any, node: str, command: messages.PublishCommand, media: PublishedMedia, **kwargs: Any) -> Any:
        sink = CountingSink(media)
        sink.attach()
        sinks.append(sink)
        return sink

    stream_started.connect(plug, dispatch_uid="tests.counting_sink")
    await node.start()
    try:
        yield Harness(layer, node, sinks)
    finally:
        stream_started.disconnect(dispatch_uid="tests.counting_sink")
        await node.shutdown()


async def test_a_sink_gets_the_streams_frames_and_reports_until_unpublish(harness: Harness) -> None:
    client = await harness.client()
    publisher, _ = await harness.publish(client)
    [sink] = harness.sinks
    async with asyncio.timeout(10):
        while sink.frames["video"] < 30 or sink.frames["audio"] < 30 or not sink.sender_reports:
            sink.changed.clear()
            await sink.changed.wait()
    await harness.send(messages.UnpublishCommand(room="r", stream="s1"))
    await asyncio.wait_for(sink.closed.wait(), 5)
    assert harness.node.publications == {}
    await publisher.pc.close()


async def test_a_player_is_answered_told_playing_and_told_when_the_stream_ends(harness: Harness) -> None:
    publisher_channel, player_channel = await harness.client(), await harness.client()
    publisher, published = await harness.publish(publisher_channel)
    player = await new_player()
    await harness.send(messages.PlayCommand(
        request_id="q-play", reply_to=player_channel, room="r", stream="s1", sdp=player.pc.localDescription.sdp,
    ))
    answer = await report_on(harness.layer, player_channel)
    assert isinstance(answer, messages.AnswerReport)
    assert (answer.request_id, answer.player, answer.codecs) == ("q-play", player_channel, published.codecs)
    await player.pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
    playing = await report_on(harness.layer, player_channel)
    assert playing == messages.PlayingReport(room="r", stream="s1", player=player_channel)
    await player.wait_for(lambda: len(player.counters) >= 10, 10)

    await harness.send(messages.UnpublishCommand(room="r", stream="s1"))
    ended = await report_on(harness.layer, player_channel)
    assert ended == messages.EndedReport(room="r", stream="s1", player=player_channel)
    assert harness.node.played == {}
    await player.pc.close()
    await publisher.pc.close()


async def test_playing_an_unknown_stream_fails_as_the_answer(harness: Harness) -> None:
    player_channel = await harness.client()
    player = await new_player()
    await harness.send(messages.PlayCommand(
        request_id="q-play", reply_to=player_channel, room="r", stream="nope", sdp=player.pc.localDescription.sdp,
    ))
    failed = await report_on(harness.layer, player_channel)
    assert isinstance(failed, messages.FailedReport)
    assert (failed.request_id, failed.stream, failed.player, failed.reason) == (
        "q-play", "nope", player_channel, "unknown_stream"
    )
    await player.pc.close()


async def test_a_publish_without_media_fails_no_media_and_a_closed_publisher_ends(harness: Harness) -> None:
    client = await harness.client()
    pc = loopback_peer()
    pc.addTransceiver(CounterVideoTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    await harness.send(messages.PublishCommand(
        request_id="p1", reply_to=client, room="r", room_id="live-r", stream="quiet", participant="alice",
        kind="camera", sdp=pc.localDescription.sdp,
    ))
    assert isinstance(await report_on(harness.layer, client), messages.AnswerReport)
    failed = await report_on(harness.layer, client, timeout=5)
    assert failed == messages.FailedReport(room="r", stream="quiet", reason="no_media",
                                           detail="no media within 1000 ms")
    await harness.send(messages.UnpublishCommand(room="r", stream="quiet"))  # as the web side does on hearing it
    await pc.close()

    publisher, _ = await harness.publish(client, stream="s2")
    await publisher.pc.close()  # no unpublish: the connection just goes away
    ended = await report_on(harness.layer, client, timeout=10)
    assert ended == messages.EndedReport(room="r", stream="s2")
