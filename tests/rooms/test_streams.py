"""Stream messages end to end in one process: real aiortc publishers and
players through the consumer and the in-process media node."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest
from aiortc import RTCSessionDescription

from rooms.media.peer import use_host_address
from rooms.models import Stream, StreamMute
from tests.media_clients import Player, loopback_peer, play, publish
from tests.media_tracks import CounterVideoTrack
from tests.wsclient import ProtocolClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media_setup(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_HOST_IP = "127.0.0.1"
    use_host_address("127.0.0.1")


@pytest.fixture(autouse=True, params=["memory", "redis"])
def live_backend(request):  # type: ignore[no-untyped-def]
    if request.param == "redis":
        request.getfixturevalue("redis_live_state")
    return request.param


async def alice_and_bob_in(room: str) -> tuple[ProtocolClient, ProtocolClient]:
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room=room)
    await bob.request("room.join", room=room)
    return alice, bob


async def test_publish_play_and_publisher_leaving() -> None:
    alice, bob = await alice_and_bob_in("r")
    camera = await publish(alice, "r")
    stream = camera.stream
    assert stream["participant"] == "alice" and stream["kind"] == "camera"
    assert stream["audio"] and stream["video"] and stream["muted"] == {"audio": False, "video": False}
    published = await bob.event("room.published")
    assert published["stream"] == stream

    carol = await ProtocolClient.connected("carol")
    state = await carol.request("room.join", room="r")
    assert {"name": "alice", "streams": [stream]} in state["participants"]

    player = await play(bob, stream["id"])
    playing = await bob.event("stream.status", timeout=10)
    assert playing == {"type": "stream.status", "stream": stream["id"], "status": "PLAYING"}
    await player.wait_for(lambda: len(player.counters) >= 40, 10)
    numbers = [number for _, number in player.counters]
    assert numbers == sorted(numbers) and numbers[-1] > numbers[0]

    await alice.request("room.leave", room="r")
    unpublished = await bob.event("room.unpublished")
    assert unpublished["stream"] == {"id": stream["id"], "participant": "alice"}
    stopped = await bob.event("stream.status")
    assert stopped == {"type": "stream.status", "stream": stream["id"], "status": "STOPPED"}
    row = await Stream.objects.select_related("participant").aget(live_id=stream["id"])
    assert row.participant.login == "alice" and row.kind == "camera" and row.record is False
    assert row.codec == "VP8+opus" and row.ended_at is not None
    for client in (alice, bob, carol):
        await client.close()
    await camera.close()
    await player.pc.close()


async def test_second_camera_is_limit_and_screen_is_allowed() -> None:
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="r")
    camera = await publish(alice, "r")
    pc = loopback_peer()
    pc.addTransceiver(CounterVideoTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    second = await alice.request("stream.publish", room="r", kind="camera", sdp=pc.localDescription.sdp)
    assert second == {"type": "stream.status", "re": second["re"], "stream": None, "status": "FAILED",
                      "info": "limit"}
    await pc.close()
    screen = await publish(alice, "r", kind="screen", shade=60)
    assert screen.stream["kind"] == "screen" and screen.stream["id"] != camera.stream["id"]
    for item in (camera, screen):
        await item.close()
    await alice.close()


async def test_unknown_stream_and_forbidden_unpublish() -> None:
    alice, bob = await alice_and_bob_in("r")
    missing = await bob.request("stream.play", stream="nope", sdp="v=0")
    assert missing["type"] == "stream.status" and missing["status"] == "FAILED" and missing["info"] == "unknown_stream"
    camera = await publish(alice, "r")
    refused = await bob.request("stream.unpublish", stream=camera.stream["id"])
    assert refused["type"] == "error" and refused["code"] == "forbidden"
    done = await alice.request("stream.unpublish", stream=camera.stream["id"])
    assert done["status"] == "UNPUBLISHED"
    assert (await bob.event("room.unpublished"))["stream"]["id"] == camera.stream["id"]
    await camera.close()
    await alice.close()
    await bob.close()


async def assert_video_paused_until(player: Player, unmute: Awaitable[object]) -> None:
    """No frames reach ``player`` for a second (after those in flight), then they flow again after ``unmute``."""
    await asyncio.sleep(0.3)  # frames in flight drain
    count = len(player.counters)
    await asyncio.sleep(1)
    assert len(player.counters) - count <= 1
    await unmute
    await player.wait_for(lambda: len(player.counters) >= count + 15, 5)


async def mutes_recorded(stream_id: str, count: int) -> list[tuple[bool, bool, str]]:
    """The stream's mute history once ``count`` rows are there (history writes are applied from a queue)."""
    rows = StreamMute.objects.filter(stream__live_id=stream_id).order_by("at", "pk")
    for _ in range(50):
        found = [(row.audio, row.video, row.by) async for row in rows]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{count} mutes of {stream_id} were never recorded: {found}")


async def test_mute_video_tells_the_room_and_stops_frames_until_unmuted() -> None:
    alice, bob = await alice_and_bob_in("r")
    camera = await publish(alice, "r")
    player = await play(bob, camera.stream["id"])
    await player.wait_for(lambda: len(player.counters) >= 10, 10)
    reply = await alice.request("stream.mute", stream=camera.stream["id"], video=True)
    assert reply["status"] == "PUBLISHING"
    muted = await bob.event("room.muted")
    assert muted["stream"]["muted"] == {"audio": False, "video": True}
    await assert_video_paused_until(player, alice.request("stream.mute", stream=camera.stream["id"], video=False))
    assert await mutes_recorded(camera.stream["id"], 2) == [(False, True, ""), (False, False, "")]
    await camera.close()
    await player.pc.close()
    await alice.close()
    await bob.close()


async def test_a_moderator_mutes_another_participants_stream_on_the_server(settings) -> None:  # type: ignore[no-untyped-def]
    from rooms.access_tokens import VideoGrants, token_mint

    settings.API_KEYS = {"main": "a-long-random-secret-of-more-than-32-characters"}
    alice, bob = await alice_and_bob_in("r")
    moderator = await ProtocolClient.open()
    grants = VideoGrants(room="r", room_join=True, room_admin=True)
    await moderator.request("session.connect", token=token_mint(identity="mod", grants=grants))
    await moderator.request("room.join", room="r")
    camera = await publish(alice, "r")
    player = await play(bob, camera.stream["id"])
    await player.wait_for(lambda: len(player.counters) >= 10, 10)
    refused = await bob.request("stream.mute", stream=camera.stream["id"], video=True)
    assert refused["code"] == "forbidden"
    reply = await moderator.request("stream.mute", stream=camera.stream["id"], video=True)
    assert reply["type"] == "ok"
    muted = await bob.event("room.muted")
    assert muted["by"] == "mod" and muted["stream"]["muted"] == {"audio": False, "video": True}
    assert (await alice.event("room.muted"))["by"] == "mod"
    await assert_video_paused_until(
        player, moderator.request("stream.mute", stream=camera.stream["id"], video=False)
    )
    assert await mutes_recorded(camera.stream["id"], 2) == [(False, True, "mod"), (False, False, "mod")]
    await camera.close()
    await player.pc.close()
    for client in (alice, bob, moderator):
        await client.close()


async def test_a_publish_whose_media_never_arrives_fails_no_media(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_START_TIMEOUT_MS = 1000
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="r")
    pc = loopback_peer()
    pc.addTransceiver(CounterVideoTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await alice.request("stream.publish", room="r", kind="camera", sdp=pc.localDescription.sdp)
    assert answer["type"] == "stream.answer"
    # The answer is never applied: no ICE, no media.
    failed = await alice.event("stream.status", timeout=5)
    assert failed == {"type": "stream.status", "stream": answer["stream"]["id"], "status": "FAILED",
                      "info": "no_media"}
    await pc.close()
    camera = await publish(alice, "r")  # the camera slot is free again
    await camera.close()
    await alice.close()


async def test_a_player_leaving_the_room_closes_its_plays() -> None:
    alice, bob = await alice_and_bob_in("r")
    camera = await publish(alice, "r")
    player = await play(bob, camera.stream["id"])
    await player.wait_for(lambda: len(player.counters) >= 5, 10)
    from rooms.media_host import local_media_node

    node = await local_media_node()
    assert len(node.played) == 1
    ended = asyncio.Event()
    player.pc.on(
        "connectionstatechange", lambda: ended.set() if player.pc.connectionState in ("closed", "failed") else None
    )
    await bob.request("room.leave", room="r")
    await asyncio.wait_for(ended.wait(), 10)  # the server closed the player's connection
    assert node.played == {}
    await player.pc.close()
    await camera.close()
    await alice.close()
    await bob.close()


async def test_two_publishers_play_each_other_and_a_screen_is_told_apart() -> None:
    alice, bob = await alice_and_bob_in("r")
    alice_camera = await publish(alice, "r", shade=200)
    bob_camera = await publish(bob, "r", shade=128)
    alice_screen = await publish(alice, "r", kind="screen", shade=40)
    bob_sees_camera = await play(bob, alice_camera.stream["id"])
    bob_sees_screen = await play(bob, alice_screen.stream["id"])
    alice_sees_bob = await play(alice, bob_camera.stream["id"])
    for player in (bob_sees_camera, bob_sees_screen, alice_sees_bob):
        await player.wait_for(lambda player=player: len(player.counters) >= 20 and len(player.lumas) >= 2, 15)
    # The counter squares cover a strip; the rest of the picture is the shade.
    assert min(bob_sees_camera.lumas) > 150
    assert max(bob_sees_screen.lumas) < 90
    assert min(alice_sees_bob.lumas) > 90 and max(alice_sees_bob.lumas) < 160
    for item in (alice_camera, bob_camera, alice_screen):
        await item.close()
    for player in (bob_sees_camera, bob_sees_screen, alice_sees_bob):
        await player.pc.close()
    await alice.close()
    await bob.close()


async def test_g711_audio_only_publish_reaches_a_player() -> None:
    from aiortc import RTCRtpSender

    from tests.media_tracks import ToneAudioTrack

    alice, bob = await alice_and_bob_in("r")
    pc = loopback_peer()
    transceiver = pc.addTransceiver(ToneAudioTrack(), direction="sendonly")
    capabilities = RTCRtpSender.getCapabilities("audio")
    assert capabilities is not None
    transceiver.setCodecPreferences([c for c in capabilities.codecs if c.mimeType == "audio/PCMU"])
    await pc.setLocalDescription(await pc.createOffer())
    assert "opus" not in pc.localDescription.sdp.lower()
    answer = await alice.request("stream.publish", room="r", kind="camera", sdp=pc.localDescription.sdp, timeout=10)
    assert answer["stream"]["audio"] is True and answer["stream"]["video"] is False
    assert "PCMU" in answer["sdp"]
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    assert (await alice.event("stream.status", timeout=10))["status"] == "PUBLISHING"
    player = await play(bob, answer["stream"]["id"])
    await player.wait_for(lambda: player.audio_frames >= 50, 10)
    assert player.audio_energy > 1000
    await pc.close()
    await player.pc.close()
    await alice.close()
    await bob.close()


async def test_media_uses_the_configured_udp_port_range(settings) -> None:  # type: ignore[no-untyped-def]
    import re

    settings.MEDIA_UDP_PORTS = (41000, 41049)
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="r")
    pc = loopback_peer()
    pc.addTransceiver(CounterVideoTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await alice.request("stream.publish", room="r", kind="camera", sdp=pc.localDescription.sdp, timeout=10)
    candidates = re.findall(r"a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ host", answer["sdp"])
    assert candidates, answer["sdp"]
    assert all(host == "127.0.0.1" and 41000 <= int(port) <= 41049 for host, port in candidates)
    await pc.close()
    await alice.close()


async def test_a_publisher_closing_its_connection_ends_the_stream() -> None:
    alice, bob = await alice_and_bob_in("r")
    camera = await publish(alice, "r")
    assert (await bob.event("room.published"))["stream"]["id"] == camera.stream["id"]
    await camera.close()  # no stream.unpublish: the peer connection just goes away
    unpublished = await bob.event("room.unpublished", timeout=10)
    assert unpublished["stream"] == {"id": camera.stream["id"], "participant": "alice"}
    # The history follows the event (rooms.history_outbox).
    deadline = asyncio.get_running_loop().time() + 5
    while not await Stream.objects.filter(live_id=camera.stream["id"], ended_at__isnull=False).aexists():
        assert asyncio.get_running_loop().time() < deadline, "the stream's row was not ended"
        await asyncio.sleep(0.02)
    again = await publish(alice, "r")  # the camera slot is free
    await again.close()
    await alice.close()
    await bob.close()


async def test_a_speaking_publisher_is_in_room_speakers_until_its_audio_is_muted() -> None:
    """The node's speakers report reaches every member as room.speakers,
    once per change: a steady tone is one event, muting it another."""
    alice, bob = await alice_and_bob_in("talk")
    camera = await publish(alice, "talk")  # its audio: a steady -12 dBov tone
    stream = camera.stream["id"]
    speaking = {"type": "room.speakers", "room": "talk",
                "speakers": [{"participant": "alice", "stream": stream, "level": 0.8}]}
    assert await bob.event("room.speakers", timeout=5) == speaking
    assert await alice.event("room.speakers", timeout=5) == speaking  # the speaker hears it too
    await bob.assert_no_event("room.speakers", within=1.0)  # unchanged: not sent again

    assert (await alice.request("stream.mute", stream=stream, audio=True))["status"] == "PUBLISHING"
    assert await bob.event("room.speakers", timeout=5) == {"type": "room.speakers", "room": "talk", "speakers": []}
    await camera.close()
    await alice.close()
    await bob.close()
