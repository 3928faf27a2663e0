"""ROOM_MAX_VIDEO_KBPS through a real media node: a real aiortc publisher
sending pictures that need every bit they are given is told by REMB to stay
under the cap, and the node then receives no more than that."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from aiortc import RTCRtpSender, RTCSessionDescription
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci
from channels.layers import InMemoryChannelLayer

from rooms.media import messages
from rooms.media.config import NodeConfig
from rooms.media.node import MediaNode
from rooms.media.peer import use_host_address
from rooms.media.signals import stream_started
from rooms.media.sink import PublishedMedia
from tests.media_clients import publisher_offer
from tests.media_tracks import NoiseVideoTrack, ToneAudioTrack
from tests.rooms.media.test_messages import report_on

CAP_KBPS = 300
# After PUBLISHING: time for the first REMB (≤ 1 s) and the encoder's
# reset, then for the rate-control buffer filled before the cap to drain.
SETTLE_S = 3.0
WINDOW_S = 4.0
# libvpx in CBR overshoots its target by up to 15 % (aiortc sets
# overshoot-pct 15); payload bytes only, so RTP headers are not counted.
TOLERANCE = 1.15


@dataclass
class VideoBytes:
    """A sink that notes each video frame's size as the node receives it."""

    media: PublishedMedia
    arrivals: list[tuple[float, int]] = field(default_factory=list)

    def attach(self) -> None:
        self.media.frames_watch("video", lambda codec, frame: self.arrivals.append((time.monotonic(), len(frame.data))))

    def kbps(self, start: float, end: float) -> float:
        total = sum(size for at, size in self.arrivals if start <= at < end)
        return total * 8 / (end - start) / 1000

    def kbps_each_second(self, start: float, end: float) -> list[int]:
        return [round(self.kbps(at, at + 1)) for at in _steps(start, end)]

    async def close(self) -> None:
        pass


def _steps(start: float, end: float) -> list[float]:
    return [start + second for second in range(int(end - start))]


@dataclass
class RembSeen:
    """REMBs as the publisher's video sender handles them: (time, bps, SSRCs)."""

    packets: list[tuple[float, int, list[int]]] = field(default_factory=list)
    connected_at: float | None = None  # when the sender's DTLS transport came up

    def watch(self, sender: RTCRtpSender) -> None:
        handle = sender._handle_rtcp_packet
        transport = sender.transport

        @transport.on("statechange")
        def on_state() -> None:
            if transport.state == "connected" and self.connected_at is None:
                self.connected_at = time.monotonic()

        async def seeing(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
                self.packets.append((time.monotonic(), bitrate, ssrcs))
            await handle(packet)

        sender._handle_rtcp_packet = seeing  # type: ignore[method-assign]


@dataclass
class Run:
    node: MediaNode
    sink: VideoBytes
    sender: RTCRtpSender
    rembs: RembSeen
    publishing_at: float
    answer_sdp: str

    def encoder_target(self) -> int | None:
        encoder = getattr(self.sender, "_RTCRtpSender__encoder", None)
        return None if encoder is None else int(encoder.target_bitrate)


@asynccontextmanager
async def noisy_publish(cap_kbps: int) -> AsyncIterator[Run]:
    use_host_address("127.0.0.1")
    layer = InMemoryChannelLayer()
    node = MediaNode(layer, NodeConfig(
        host_ip="127.0.0.1", udp_ports=None, video_codec="VP8", ice_servers=(),
        media_start_timeout_ms=10_000, max_video_kbps=cap_kbps,
    ))
    sinks: list[VideoBytes] = []

    def plug(sender: Any, media: PublishedMedia, **kwargs: Any) -> VideoBytes:
        sink = VideoBytes(media)
        sink.attach()
        sinks.append(sink)
        return sink

    stream_started.connect(plug, dispatch_uid="tests.video_bytes")
    await node.start()
    publisher, offer = await publisher_offer(tracks=(NoiseVideoTrack(), ToneAudioTrack()))
    try:
        sender = next(t.sender for t in publisher.pc.getTransceivers() if t.kind == "video")
        rembs = RembSeen()
        rembs.watch(sender)
        client = await layer.new_channel("client.")
        await layer.send(node.channel, messages.message_encode(messages.PublishCommand(
            request_id="p", reply_to=client, room="r", room_id="live-r", stream="s1",
            participant="alice", kind="camera", sdp=offer,
        )))
        answer = await report_on(layer, client)
        assert isinstance(answer, messages.AnswerReport), answer
        await publisher.pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
        assert isinstance(await report_on(layer, client), messages.PublishingReport)
        [sink] = sinks
        yield Run(node, sink, sender, rembs, time.monotonic(), answer.sdp)
    finally:
        stream_started.disconnect(dispatch_uid="tests.video_bytes")
        await node.shutdown()
        await publisher.pc.close()


async def test_a_capped_publisher_is_told_the_cap_every_second_and_keeps_under_it() -> None:
    async with noisy_publish(CAP_KBPS) as run:
        await asyncio.sleep(SETTLE_S)  # the settle time being measured, no event to wait for
        [publication] = run.node.publications.values()
        cap = publication.stream.bitrate_cap
        assert cap is not None
        sent_before, start = cap.sent, time.monotonic()
        await asyncio.sleep(WINDOW_S)  # the measurement window
        end = time.monotonic()
        sent = cap.sent - sent_before
        kbps = run.sink.kbps(start, end)
        target = run.encoder_target()

    # The answer tells a browser it will hear REMB for the video codec.
    video = run.answer_sdp[run.answer_sdp.index("m=video"):]
    payload_type = video.split("\r\n")[0].split()[3]
    assert f"a=rtcp-fb:{payload_type} goog-remb" in video, video
    # The encoder was told, and the bytes at the node show it listened.
    assert target is not None and target <= CAP_KBPS * 1000, target
    assert kbps <= CAP_KBPS * TOLERANCE, kbps
    assert kbps >= CAP_KBPS * 0.5, kbps  # the noise really needs bits: the cap, not the picture, limits it
    # The node's own REMB goes out once a second ...
    assert WINDOW_S - 1 <= sent <= WINDOW_S + 1, sent
    # ... and reaches the publisher's video sender, which aiortc routes it
    # to only when it names that sender's SSRC; nothing it heard exceeds the cap.
    heard = [(at, bps, ssrcs) for at, bps, ssrcs in run.rembs.packets if start <= at < end]
    assert len(heard) >= WINDOW_S - 1, run.rembs.packets
    assert all(run.sender._ssrc in ssrcs for _, _, ssrcs in heard), heard
    assert all(bps <= CAP_KBPS * 1000 for _, bps, _ in run.rembs.packets), run.rembs.packets
    gaps = [b[0] - a[0] for a, b in pairwise(heard)]
    assert max(gaps) <= 1.5, gaps
    # The first one as soon as the publisher can hear it, not a second later.
    assert run.rembs.connected_at is not None
    assert run.rembs.packets[0][0] - run.rembs.connected_at <= 0.5, (run.rembs.connected_at, run.rembs.packets[0])
    first_heard = run.rembs.packets[0][0] - run.publishing_at
    print(f"capped: {kbps:.0f} kbps, encoder target {target}, node REMBs {sent} in {WINDOW_S} s, "
          f"publisher heard {len(heard)}, first {first_heard:+.2f} s after PUBLISHING "
          f"({run.rembs.packets[0][0] - run.rembs.connected_at:.3f} s after DTLS), "
          f"each second: {run.sink.kbps_each_second(run.publishing_at - 1, end)}")


async def test_without_a_cap_the_same_publisher_sends_clearly_more() -> None:
    async with noisy_publish(0) as run:
        await asyncio.sleep(SETTLE_S)  # same settle time as the capped run
        start = time.monotonic()
        await asyncio.sleep(WINDOW_S)  # the measurement window
        end = time.monotonic()
        assert run.node.publications["s1"].stream.bitrate_cap is None
        kbps = run.sink.kbps(start, end)
        target = run.encoder_target()
    assert target is not None and target > CAP_KBPS * 1000 * 1.5, target
    assert kbps > CAP_KBPS * 1.5, kbps
    print(f"uncapped: {kbps:.0f} kbps, encoder target {target}, publisher heard {len(run.rembs.packets)} REMBs, "
          f"each second: {run.sink.kbps_each_second(run.publishing_at - 1, end)}")


def test_a_node_takes_the_cap_from_room_max_video_kbps(settings: Any) -> None:
    assert NodeConfig.from_settings().max_video_kbps == 2500  # the default: on
    settings.ROOM_MAX_VIDEO_KBPS = 0
    assert NodeConfig.from_settings().max_video_kbps == 0


async def test_what_a_publisher_is_told_stays_within_the_floor_and_the_cap() -> None:
    """The cap, the subscribers' limit and the node's own estimate, lowest
    first, but never under ROOM_MIN_VIDEO_KBPS (nor over the cap)."""
    from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCRtpReceiver
    from aiortc.rtp import pack_remb_fci

    from rooms.media.bitrate import BitrateCap

    transport = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])
    receiver = RTCRtpReceiver("video", transport)
    cap = BitrateCap(receiver, media_ssrc=1234, cap_bps=2_500_000, floor_bps=300_000)
    assert cap.bitrate_bps() == 2_500_000
    cap.limit(800_000)
    assert cap.bitrate_bps() == 800_000
    # The node's own estimate of the publisher's uplink, when lower, wins ...
    told: list[Any] = []

    async def sent(packet: Any) -> None:
        told.append(packet)

    cap._send = sent
    await cap._send_clamped(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0,
                                           fci=pack_remb_fci(500_000, [1234])))
    assert cap.bitrate_bps() == 500_000 and unpack_remb_fci(told[-1].fci)[0] == 500_000
    # ... down to the floor, and no further.
    await cap._send_clamped(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0,
                                           fci=pack_remb_fci(120_000, [1234])))
    assert cap.bitrate_bps() == 300_000 and unpack_remb_fci(told[-1].fci)[0] == 300_000
    cap.limit(None)
    assert cap.bitrate_bps() == 300_000
    # Without a cap of its own, the floor still holds; with nothing known, nothing is told.
    bare = BitrateCap(receiver, media_ssrc=1234, cap_bps=0, floor_bps=300_000)
    assert bare.bitrate_bps() is None
    bare.limit(200_000)
    assert bare.bitrate_bps() == 300_000
    await transport.stop()
