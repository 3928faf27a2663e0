"""The SFU core with real aiortc peers on loopback: publisher → tap →
TrackFanout → each player's ForwardLeg, with no decoding or encoding in between."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
from aiortc import RTCSessionDescription
from django.conf import settings

from rooms.media.peer import MediaError, PlayedStream, PublishedStream, use_host_address
from tests.media_clients import Player, Publisher, loopback_peer, new_player, publisher_offer


@pytest.fixture(autouse=True)
def loopback_only() -> None:
    use_host_address("127.0.0.1")


async def play(published: PublishedStream, codec: str = "VP8") -> tuple[Player, PlayedStream]:
    player = await new_player()
    pc = player.pc
    played, answer = await PlayedStream.accept(
        published=published, offer_sdp=pc.localDescription.sdp, video_codec=codec, ice_servers=[]
    )
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return player, played


async def publish(codec: str = "VP8") -> tuple[Publisher, PublishedStream, asyncio.Event]:
    publisher, offer = await publisher_offer(codec)
    started = asyncio.Event()
    published, answer = await PublishedStream.accept(
        stream_id="s1", offer_sdp=offer, video_codec=codec, ice_servers=[], on_first_media=started.set,
        max_video_kbps=settings.ROOM_MAX_VIDEO_KBPS,  # as deployed: REMB on
    )
    await publisher.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return publisher, published, started


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_frames_advance_at_full_rate_through_the_tap(codec: str) -> None:
    publisher, published, started = await publish(codec)
    await asyncio.wait_for(started.wait(), 10)
    player, played = await play(published, codec)
    await player.wait_for(lambda: player.counters, 5)
    await asyncio.sleep(3)
    window = [c for t, c in player.counters if t >= player.counters[-1][0] - 2]
    fps = (len(window) - 1) / 2
    assert fps >= 20, fps
    numbers = [c for _, c in player.counters]
    assert numbers == sorted(numbers) and numbers[-1] - numbers[0] >= 60
    assert player.sizes == {(640, 480)}
    assert player.audio_frames > 50 and player.audio_energy > 1000, player.audio_formats
    await played.close()
    await published.close()
    await publisher.pc.close()


async def test_late_player_gets_first_frame_within_a_second() -> None:
    publisher, published, started = await publish()
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(2)  # the publisher's first keyframe is long gone
    asked = time.monotonic()
    player, played = await play(published)
    await player.wait_for(lambda: player.first_frame_at is not None, 5)
    assert player.first_frame_at is not None and player.first_frame_at - asked <= 1.0
    await played.close()
    await published.close()
    await publisher.pc.close()


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_players_receive_the_publishers_encoded_bytes_unchanged(codec: str) -> None:
    """Passthrough: what the player's receiver reassembles is, byte for byte,
    what the server's receiver reassembled. Re-encoding would change it."""
    from rooms.media.tap import EncodedFrameTap

    publisher, published, started = await publish(codec)
    # From the first frame: a player that comes up soon after the first
    # keyframe starts with the frames since it.
    sent: list[bytes] = []
    published.taps["video"].add_sink(lambda _codec, frame: sent.append(frame.data))
    await asyncio.wait_for(started.wait(), 10)
    pc = loopback_peer()
    received: list[bytes] = []
    arrived = asyncio.Event()

    def on_frame(_codec, frame):  # type: ignore[no-untyped-def]
        received.append(frame.data)
        if len(received) >= 30:
            arrived.set()

    video = pc.addTransceiver("video", direction="recvonly")
    EncodedFrameTap.install(video.receiver).add_sink(on_frame)
    await pc.setLocalDescription(await pc.createOffer())
    played, answer = await PlayedStream.accept(
        published=published, offer_sdp=pc.localDescription.sdp, video_codec=codec, ice_servers=[]
    )
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await asyncio.wait_for(arrived.wait(), 10)
    start = sent.index(received[0])
    assert received[:30] == sent[start : start + 30]
    assert server_decoders_idle(published)
    leg = played.tracks["video"]
    calls, datagrams = leg.rtp.sends()
    assert datagrams >= leg.frames_sent >= 30
    if sys.platform == "linux":
        # A frame's packets leave together: one system call per frame (an
        # H.264 keyframe's short parameter sets may take one more), plus one
        # per packet resent on a NACK.
        assert calls <= leg.frames_sent + leg.rtp.retransmitted + 2, (calls, datagrams, leg.frames_sent)
    await played.close()
    await pc.close()
    await published.close()
    await publisher.pc.close()


def server_decoders_idle(published: PublishedStream) -> bool:
    receivers = [t.receiver for t in published.pc.getTransceivers()]
    return all(type(r._RTCRtpReceiver__decoder_queue).__name__ == "EncodedFrameTap" for r in receivers)


async def test_offer_without_the_room_codec_is_codec_not_supported() -> None:
    publisher, offer = await publisher_offer("H264")
    only_h264 = "\n".join(
        line for line in offer.splitlines() if "VP8" not in line
    )
    with pytest.raises(MediaError) as failure:
        await PublishedStream.accept(stream_id="s", offer_sdp=only_h264, video_codec="VP8", ice_servers=[])
    assert failure.value.info == "codec_not_supported"
    await publisher.pc.close()


async def test_a_leg_paused_for_two_reasons_resumes_when_both_are_gone() -> None:
    publisher, published, started = await publish()
    await asyncio.wait_for(started.wait(), 10)
    player, played = await play(published)
    await player.wait_for(lambda: len(player.counters) >= 10, 5)
    leg = played.tracks["video"]
    leg.pause("bandwidth")
    leg.pause("mute")
    await asyncio.sleep(0.3)  # what was in flight arrives
    paused_at = len(player.counters)
    leg.resume("mute")
    await asyncio.sleep(1)
    assert len(player.counters) - paused_at <= 1 and leg.paused
    leg.resume("bandwidth")
    # Restarted at a keyframe: the player decodes again.
    await player.wait_for(lambda: len(player.counters) >= paused_at + 15, 5)
    numbers = [number for _, number in player.counters]
    assert numbers == sorted(numbers)
    await played.close()
    await published.close()
    await publisher.pc.close()


def drop_every(transport, nth: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Lose every ``nth`` RTP packet a DTLS transport sends (counts kept)."""
    counts = {"sent": 0, "dropped": 0}
    send = transport._send_rtp

    async def lossy(data: bytes) -> None:
        counts["sent"] += 1
        if counts["sent"] % nth == 0:
            counts["dropped"] += 1
            return
        await send(data)

    transport._send_rtp = lossy
    return counts


def drop_every_received(transport, nth: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Lose every ``nth`` RTP packet a DTLS transport receives (counts kept).

    The server's legs send past aiortc's per-packet send path (the fan-out
    writes a frame's packets at once), so the loss on the server → player
    hop is made where the player takes them in."""
    counts = {"sent": 0, "dropped": 0}
    handle = transport._handle_rtp_data

    async def lossy(data: bytes, arrival_time_ms: int) -> None:
        counts["sent"] += 1
        if counts["sent"] % nth == 0:
            counts["dropped"] += 1
            return
        await handle(data, arrival_time_ms)

    transport._handle_rtp_data = lossy
    return counts


def count_retransmissions(sender) -> dict[str, int]:  # type: ignore[no-untyped-def]
    counts = {"retransmitted": 0}
    retransmit = sender._retransmit

    async def counting(sequence_number: int) -> None:
        counts["retransmitted"] += 1
        await retransmit(sequence_number)

    sender._retransmit = counting
    return counts


async def test_lost_packets_are_recovered_by_nack_on_each_hop() -> None:
    publisher, published, started = await publish()
    await asyncio.wait_for(started.wait(), 10)
    player, played = await play(published)
    await player.wait_for(lambda: len(player.counters) >= 10, 5)
    video_out = next(t.sender for t in publisher.pc.getTransceivers() if t.kind == "video")
    video_fwd = next(t.sender for t in played.pc.getTransceivers() if t.kind == "video")
    video_in = next(t.receiver for t in player.pc.getTransceivers() if t.kind == "video")
    # 4% loss on both legs: publisher → server, server → player.
    first_leg = drop_every(video_out.transport, 25)
    second_leg = drop_every_received(video_in.transport, 25)
    first_resent = count_retransmissions(video_out)
    second_resent = count_retransmissions(video_fwd)
    start = len(player.counters)
    await asyncio.sleep(4)  # the measurement window
    window = [number for _, number in player.counters[start:]]
    assert first_leg["dropped"] > 10 and second_leg["dropped"] > 10
    # Each hop repairs its own losses: the publisher resends what the server
    # missed, the server resends what the player missed.
    assert first_resent["retransmitted"] > 0 and second_resent["retransmitted"] > 0
    assert len(window) / 4 >= 20, len(window) / 4
    assert window == sorted(window)
    await played.close()
    await published.close()
    await publisher.pc.close()
