"""WHIP and WHEP in one process: the HTTP edge's answers and refusals, and
WHIP publishers and WHEP players against real WebSocket participants, real
aiortc peers and the in-process media node."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import av
import jwt
import pytest
from aiortc import RTCSessionDescription
from django.test import AsyncClient

from recording.models import Recording
from rooms.access_tokens import grants_from_names, token_mint
from rooms.headless import HeadlessSession
from rooms.live.context import process_context
from rooms.media.peer import use_host_address
from rooms.models import Participant, Room
from tests.media_clients import Player, new_player, play, publish, publisher_offer
from tests.wsclient import ProtocolClient

pytestmark = pytest.mark.django_db(transaction=True)

WHIP_TOKEN = "whip-secret-for-the-tests"
KEY, SECRET = "main", "main-secret-0123456789-abcdefghijklmnop"
# A WebRTC offer in form, enough for the edge's checks (it never reaches a node).
FORM_OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
    "a=sendonly\r\n"
)


@pytest.fixture(autouse=True)
def whip_settings(settings):  # type: ignore[no-untyped-def]
    settings.WHIP_TOKEN = WHIP_TOKEN
    settings.API_KEYS = {KEY: SECRET}
    settings.MEDIA_HOST_IP = "127.0.0.1"
    use_host_address("127.0.0.1")


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


async def post_offer(path: str, sdp: str, token: str | None = WHIP_TOKEN, content_type: str = "application/sdp") -> Any:
    return await AsyncClient().post(path, data=sdp.encode(), content_type=content_type, headers=bearer(token))


def refusal(response: Any, status: int, code: str) -> str:
    """The refusal's sentence, after checking its status, code and form."""
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["error"] == code, body
    assert response["Access-Control-Allow-Origin"] == "*"
    message: str = body["message"]
    return message


def token(identity: str, room: str = "stage", grants: tuple[str, ...] = ("publish", "subscribe"), **claims: Any) -> str:
    return token_mint(identity=identity, grants=grants_from_names(list(grants), room=room), **claims)


def headless_of(resource: str) -> HeadlessSession:
    (headless,) = [c for c in process_context().connections if isinstance(c, HeadlessSession)
                   and c.resource == resource]
    return headless


async def nobody_in(room: str) -> None:
    """No WHIP participant stayed anywhere: not in the room, and nothing of it in this process."""
    assert await process_context().live_state.room_members(room) == {}
    for headless in [c for c in process_context().connections if isinstance(c, HeadlessSession)]:
        await asyncio.wait_for(headless.stopped.wait(), 5)
    assert not [c for c in process_context().connections if isinstance(c, HeadlessSession)]


# --- The edge: refusals before anything starts ------------------------------------------


async def test_open_rooms_without_whip_token_refuse_whip(settings) -> None:  # type: ignore[no-untyped-def]
    settings.WHIP_TOKEN = ""
    response = await post_offer("/whip/stage", FORM_OFFER)
    assert "WHIP_TOKEN is not set" in refusal(response, 403, "whip_disabled")
    response = await post_offer("/whep/stage/0123456789abcdef", FORM_OFFER)
    refusal(response, 403, "whip_disabled")
    await nobody_in("stage")


async def test_refusals_of_the_endpoint() -> None:
    response = await post_offer("/whip/stage", FORM_OFFER, token=None)
    refusal(response, 401, "token_required")
    assert response["WWW-Authenticate"] == 'Bearer realm="whip"'
    response = await post_offer("/whip/stage", FORM_OFFER, token="not-the-secret")
    assert "not this server's WHIP_TOKEN" in refusal(response, 401, "token_invalid")
    assert response["WWW-Authenticate"] == 'Bearer realm="whip", error="invalid_token"'

    response = await post_offer("/whip/stage", '{"sdp": "v=0"}', content_type="application/json")
    assert "Content-Type: application/sdp" in refusal(response, 415, "unsupported_media_type")
    assert "starts with v=0" in refusal(await post_offer("/whip/stage", "hello"), 400, "bad_sdp")
    no_media = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    assert "no audio or video" in refusal(await post_offer("/whip/stage", no_media), 400, "bad_sdp")
    no_fingerprint = FORM_OFFER.replace("a=fingerprint", "a=nothing")
    assert "a=fingerprint" in refusal(await post_offer("/whip/stage", no_fingerprint), 400, "bad_sdp")
    h264_only = FORM_OFFER.replace("VP8/90000", "H264/90000")
    assert "no VP8" in refusal(await post_offer("/whip/stage", h264_only), 400, "bad_sdp")
    assert "not a room name" in refusal(await post_offer("/whip/.hidden", FORM_OFFER), 400, "invalid_room")

    for method in ("get", "put", "head"):
        response = await getattr(AsyncClient(), method)("/whip/stage")
        assert response.status_code == 405 and response["Allow"] == "POST, OPTIONS"
    await nobody_in("stage")


async def test_resource_refuses_patch_and_unknown_sessions() -> None:
    response = await AsyncClient().patch(
        "/whip/stage/some-session", data=b"a=ice-ufrag:x", content_type="application/trickle-ice-sdpfrag"
    )
    assert "no trickle ICE" in refusal(response, 405, "method_not_allowed")
    assert response["Allow"] == "DELETE, OPTIONS"
    for method in ("get", "post", "put"):
        assert (await getattr(AsyncClient(), method)("/whip/stage/some-session")).status_code == 405
    refusal(await AsyncClient().delete("/whip/stage/some-session"), 404, "not_found")
    refusal(await AsyncClient().delete("/whep/stage/0123456789abcdef/some-session"), 404, "not_found")


async def test_options_answers_cors_preflight_and_accept_post(settings) -> None:  # type: ignore[no-untyped-def]
    response = await AsyncClient().options("/whip/stage", headers={"Origin": "https://studio.example"})
    assert response.status_code == 200
    assert response["Accept-Post"] == "application/sdp"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert "Authorization" in response["Access-Control-Allow-Headers"]
    assert response["Access-Control-Expose-Headers"] == "Location, ETag, Link, Accept-Post"
    response = await AsyncClient().options("/whip/stage/some-session")
    assert response["Access-Control-Allow-Methods"] == "DELETE, OPTIONS"
    assert "Accept-Post" not in response

    settings.WHIP_CORS_ORIGINS = ["https://studio.example"]
    allowed = await AsyncClient().options("/whip/stage", headers={"Origin": "https://studio.example"})
    assert allowed["Access-Control-Allow-Origin"] == "https://studio.example" and allowed["Vary"] == "Origin"
    other = await AsyncClient().options("/whip/stage", headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in other


async def test_access_token_refusals(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_AUTH = "token"
    bob = await ProtocolClient.open()
    await bob.connect_session("bob", token=token("bob"))
    await bob.request("room.join", room="stage")

    refusal(await post_offer("/whip/stage", FORM_OFFER, token=None), 401, "token_required")
    # WHIP_TOKEN is for open rooms only: here it is just another string.
    refusal(await post_offer("/whip/stage", FORM_OFFER, token=WHIP_TOKEN), 401, "token_invalid")
    now = int(time.time())
    expired = jwt.encode(
        {"iss": KEY, "sub": "obs", "nbf": now - 3600, "exp": now - 60, "video": {"room": "stage", "roomJoin": True}},
        SECRET, algorithm="HS256",
    )
    refusal(await post_offer("/whip/stage", FORM_OFFER, token=expired), 401, "token_expired")
    watcher = token("obs", grants=("subscribe",))
    message = refusal(await post_offer("/whip/stage", FORM_OFFER, token=watcher), 403, "forbidden")
    assert message == "publishing needs the canPublish grant"
    elsewhere = token("obs", room="backstage")
    message = refusal(await post_offer("/whip/stage", FORM_OFFER, token=elsewhere), 403, "forbidden")
    assert message == "the token's roomJoin grant is for room 'backstage', not 'stage'"
    publisher = token("obs", grants=("publish",))
    refusal(await post_offer("/whep/stage/0123456789abcdef", FORM_OFFER, token=publisher), 403, "forbidden")
    # None of them ever joined.
    await bob.assert_no_event("room.joined")
    assert set(await process_context().live_state.room_members("stage")) == {"bob"}
    await bob.close()


async def test_room_refusals_are_the_websockets(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ROOM_MAX_PARTICIPANTS = 1
    bob = await ProtocolClient.connected("bob")
    await bob.request("room.join", room="stage")
    message = refusal(await post_offer("/whip/stage", FORM_OFFER), 409, "room_full")
    assert message == "the room has 1 participants"
    await bob.close()


async def test_a_locked_room_refuses_whip() -> None:
    admin = await ProtocolClient.open()
    await admin.connect_session("mod", token=token("mod", grants=("admin",)))
    await admin.request("room.join", room="stage")
    assert (await admin.request("room.lock", room="stage", locked=True))["type"] == "ok"
    message = refusal(await post_offer("/whip/stage", FORM_OFFER), 403, "room_locked")
    assert message == "a moderator locked the room: nobody can join"
    await admin.assert_no_event("room.joined")
    await admin.close()


# --- Publishing and playing ---------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def live_backend(request):  # type: ignore[no-untyped-def]
    if request.param == "redis":
        request.getfixturevalue("redis_live_state")
    return request.param


async def whip_publish(room: str) -> tuple[Any, Any]:
    """A WHIP publish to ``room``: the 201 answer and the publisher's peer (connected)."""
    publisher, sdp = await publisher_offer()
    response = await post_offer(f"/whip/{room}", sdp)
    assert response.status_code == 201, response.content
    await publisher.pc.setRemoteDescription(RTCSessionDescription(response.content.decode(), "answer"))
    return response, publisher


async def frames_advance(player: Player) -> None:
    await player.wait_for(lambda: len(player.counters) >= 30, 10)
    numbers = [number for _, number in player.counters]
    assert numbers == sorted(numbers) and numbers[-1] > numbers[0]


async def test_whip_publisher_joins_publishes_and_leaves_on_delete(live_backend: str) -> None:
    bob = await ProtocolClient.connected("bob")
    await bob.request("room.join", room="stage")
    response, publisher = await whip_publish("stage")
    assert response["Content-Type"] == "application/sdp"
    assert response.content.decode().startswith("v=0") and "a=candidate" in response.content.decode()
    location = response["Location"]
    assert location.startswith("http://testserver/whip/stage/")
    resource = location.rsplit("/", 1)[1]

    joined = await bob.event("room.joined", timeout=5)
    name = joined["participant"]["name"]
    assert name.startswith("whip-") and joined["participant"]["streams"] == []
    published = (await bob.event("room.published", timeout=10))["stream"]
    assert published["participant"] == name and published["kind"] == "camera"
    assert published["audio"] and published["video"]
    assert response["ETag"] == f'"{published["id"]}"'
    carol = await ProtocolClient.connected("carol")
    state = await carol.request("room.join", room="stage")
    assert {"name": name, "streams": [published]} in state["participants"]
    player = await play(bob, published["id"])
    await frames_advance(player)

    deleted = await AsyncClient().delete(f"/whip/stage/{resource}")
    assert deleted.status_code == 200
    assert (await bob.event("room.unpublished", timeout=5))["stream"] == {"id": published["id"], "participant": name}
    left = await bob.event("room.left", timeout=5)
    assert left == {"type": "room.left", "room": "stage", "participant": {"name": name}, "reason": "leave"}
    refusal(await AsyncClient().delete(f"/whip/stage/{resource}"), 404, "not_found")
    assert set(await process_context().live_state.room_members("stage")) == {"bob", "carol"}
    assert await process_context().live_state.session_get(resource) is None
    row = await Participant.objects.aget(login=name)
    assert row.leave_reason == Participant.LeaveReason.LEAVE
    for closing in (publisher.pc, player.pc):
        await closing.close()
    for client in (bob, carol):
        await client.close()
    await nobody_in("stage")


async def test_whip_participant_leaves_when_its_media_ends(live_backend: str) -> None:
    bob = await ProtocolClient.connected("bob")
    await bob.request("room.join", room="stage")
    response, publisher = await whip_publish("stage")
    headless = headless_of(response["Location"].rsplit("/", 1)[1])
    name = (await bob.event("room.joined", timeout=5))["participant"]["name"]
    stream = (await bob.event("room.published", timeout=10))["stream"]["id"]

    # No DELETE: the client just goes (its peer connection closes).
    await publisher.pc.close()
    assert (await bob.event("room.unpublished", timeout=10))["stream"]["id"] == stream
    left = await bob.event("room.left", timeout=5)
    assert left["participant"] == {"name": name} and left["reason"] == "disconnect"
    await asyncio.wait_for(headless.stopped.wait(), 5)
    assert await process_context().live_state.session_get(str(headless.resource)) is None
    await bob.close()
    await nobody_in("stage")


async def test_a_kicked_whip_participant_is_gone_for_good(settings) -> None:  # type: ignore[no-untyped-def]
    admin = await ProtocolClient.open()
    await admin.connect_session("mod", token=token("mod", grants=("publish", "subscribe", "admin")))
    await admin.request("room.join", room="stage")
    response, publisher = await whip_publish("stage")
    resource = response["Location"].rsplit("/", 1)[1]
    name = (await admin.event("room.joined", timeout=5))["participant"]["name"]
    await admin.event("room.published", timeout=10)

    headless = headless_of(resource)
    assert (await admin.request("room.kick", room="stage", participant=name))["type"] == "ok"
    assert (await admin.event("room.left"))["reason"] == "kicked"
    await asyncio.wait_for(headless.stopped.wait(), 5)
    assert await process_context().live_state.session_get(resource) is None
    await publisher.pc.close()
    await admin.close()
    await nobody_in("stage")


async def test_whep_plays_a_published_stream_until_deleted(live_backend: str) -> None:
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="stage")
    camera = await publish(alice, "stage")
    stream = camera.stream["id"]
    refusal(await post_offer("/whep/stage/ffffffffffffffff", FORM_OFFER), 404, "unknown_stream")

    player = await new_player()
    response = await post_offer(f"/whep/stage/{stream}", player.pc.localDescription.sdp)
    assert response.status_code == 201, response.content
    assert response["Content-Type"] == "application/sdp"
    assert response["Location"].startswith(f"http://testserver/whep/stage/{stream}/")
    assert response["ETag"] == f'"{stream}"'
    await player.pc.setRemoteDescription(RTCSessionDescription(response.content.decode(), "answer"))
    await frames_advance(player)
    # A player is nobody in the room.
    assert set(await process_context().live_state.room_members("stage")) == {"alice"}
    await alice.assert_no_event("room.joined")

    resource = response["Location"].rsplit("/", 1)[1]
    assert (await AsyncClient().delete(f"/whep/stage/{stream}/{resource}")).status_code == 200
    assert await process_context().live_state.session_get(resource) is None
    count = len(player.counters)
    await alice.assert_no_event("room.left", within=1.0)
    assert len(player.counters) <= count + 3  # the node stopped sending
    await player.pc.close()
    await camera.close()
    await alice.close()
    await nobody_in("nowhere")


async def test_whep_player_ends_with_its_stream(live_backend: str) -> None:
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="stage")
    camera = await publish(alice, "stage")
    player = await new_player()
    response = await post_offer(f"/whep/stage/{camera.stream['id']}", player.pc.localDescription.sdp)
    await player.pc.setRemoteDescription(RTCSessionDescription(response.content.decode(), "answer"))
    await frames_advance(player)
    headless = headless_of(response["Location"].rsplit("/", 1)[1])

    await alice.request("stream.unpublish", stream=camera.stream["id"])
    await asyncio.wait_for(headless.stopped.wait(), 5)
    assert await process_context().live_state.session_get(str(headless.resource)) is None
    await player.pc.close()
    await camera.close()
    await alice.close()
    await nobody_in("nowhere")


async def test_whip_into_a_new_room_creates_it_records_it_and_finalizes_it(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_ROOT = tmp_path
    publisher, sdp = await publisher_offer()
    response = await post_offer("/whip/fresh?record=true", sdp)
    assert response.status_code == 201, response.content
    await publisher.pc.setRemoteDescription(RTCSessionDescription(response.content.decode(), "answer"))
    stream = response["ETag"].strip('"')

    bob = await ProtocolClient.connected("bob")
    state = await bob.request("room.join", room="fresh")
    (whip_participant,) = state["participants"]
    if not whip_participant["streams"]:
        await bob.event("room.published", timeout=10)
    player = await play(bob, stream)
    await frames_advance(player)  # a second of media in the record
    assert (await bob.request("room.leave", room="fresh"))["type"] == "ok"

    # The publisher was the last one in: its DELETE finalizes the room, as a last leave does.
    resource = response["Location"].rsplit("/", 1)[1]
    assert (await AsyncClient().delete(f"/whip/fresh/{resource}")).status_code == 200
    room = await Room.objects.aget(name="fresh")
    assert room.status == Room.Status.FINALIZED
    deadline = time.monotonic() + 10
    while True:  # the node closes the record after its unpublish; nothing tells the test when
        record = await Recording.objects.aget(stream_live_id=stream)
        if record.status != Recording.Status.RECORDING or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert record.status == Recording.Status.READY and record.participant == whip_participant["name"]
    with av.open(str(tmp_path / record.file_path)) as container:
        video_packets = [packet for packet in container.demux(video=0) if packet.size]
    assert len(video_packets) >= 25  # the second bob watched, at least
    for closing in (publisher.pc, player.pc):
        await closing.close()
    await bob.close()
    await nobody_in("fresh")
