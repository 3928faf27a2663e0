"""The node protocol: its codec, and a node refusing what it cannot read
while it keeps serving."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCSessionDescription
from channels.layers import InMemoryChannelLayer
from django.conf import settings

from rooms.media import messages
from rooms.media.config import NodeConfig
from rooms.media.node import MediaNode
from rooms.media.peer import use_host_address
from tests.media_clients import publisher_offer

EXAMPLES: list[messages.NodeMessage] = [
    messages.PublishCommand(
        request_id="q1", reply_to="specific.a!b", room="weekly", room_id="4f1c", stream="9d04", participant="alice",
        kind="camera", sdp="v=0\r\n", record=True,
    ),
    messages.PlayCommand(
        request_id="q2", reply_to="specific.a!c", room="weekly", stream="9d04", sdp="v=0\r\n",
        muted=messages.Muted(video=True),
    ),
    messages.StopCommand(room="weekly", stream="9d04", player="specific.a!c"),
    messages.StopPlayerCommand(room="weekly", player="specific.a!c", streams=["9d04", "77aa"]),
    messages.UnpublishCommand(room="weekly", stream="9d04"),
    messages.MuteCommand(room="weekly", stream="9d04", muted=messages.Muted(audio=True)),
    messages.AnswerReport(request_id="q1", room="weekly", stream="9d04", sdp="v=0\r\n",
                          codecs={"video": "VP8", "audio": "opus"}),
    messages.AnswerReport(request_id="q2", room="weekly", stream="9d04", player="specific.a!c", sdp="v=0\r\n",
                          codecs={"video": "VP8"}),
    messages.PublishingReport(room="weekly", stream="9d04", codecs={"video": "VP8", "audio": "opus"}),
    messages.PlayingReport(room="weekly", stream="9d04", player="specific.a!c"),
    messages.FailedReport(request_id="q1", room="weekly", stream="9d04", reason="codec_not_supported",
                          detail="the room's video codec is VP8"),
    messages.FailedReport(room="weekly", stream="9d04", reason="no_media"),
    messages.EndedReport(room="weekly", stream="9d04", player="specific.a!c"),
    messages.LoadReport(node="media.node.x!y", published=2, played=5, at_ms=1_764_000_000_000),
    messages.LoadReport(node="media.node.x!y", published=2, played=5, at_ms=1_764_000_000_000, rooms=1, cpu=0.25,
                        host="media-1", pid=4242),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda message: type(message).__name__)
def test_every_message_survives_the_codec_as_json(message: messages.NodeMessage) -> None:
    encoded = json.loads(json.dumps(messages.message_encode(message)))
    assert encoded["v"] == messages.NODE_PROTOCOL_VERSION
    decode = messages.report_decode if isinstance(message, messages.Report) else messages.command_decode
    assert decode(encoded) == message


def test_readers_ignore_fields_they_do_not_know() -> None:
    encoded = {**messages.message_encode(EXAMPLES[0]), "priority": "high"}
    assert messages.command_decode(encoded) == EXAMPLES[0]


@pytest.mark.parametrize("version", [2, 0, None, "1", True])
def test_another_version_is_refused(version: Any) -> None:
    encoded = {**messages.message_encode(EXAMPLES[4]), "v": version}
    if version is None:
        del encoded["v"]
    with pytest.raises(messages.NodeMessageError) as refused:
        messages.command_decode(encoded)
    assert refused.value.reason == "version_not_supported"


@pytest.mark.parametrize(
    "change",
    [
        {"sdp": None},
        {"record": "yes"},
        {"kind": "window"},
        {"type": "media.teleport"},
        {"stream": 7},
    ],
)
def test_a_malformed_command_is_refused_with_where_to_answer(change: dict[str, Any]) -> None:
    raw = {**messages.message_encode(EXAMPLES[0]), **change}
    with pytest.raises(messages.NodeMessageError) as refused:
        messages.command_decode(raw)
    assert refused.value.reason == "bad_command"
    refusal = messages.command_refusal(raw, refused.value)
    assert refusal is not None
    channel, report = refusal
    assert channel == "specific.a!b"
    assert (report.request_id, report.room, report.reason) == ("q1", "weekly", "bad_command")
    assert report.stream == (None if "stream" in change else "9d04")


def test_a_command_without_reply_to_has_nowhere_to_be_refused() -> None:
    raw = {"v": 1, "type": "media.unpublish", "room": "weekly"}
    with pytest.raises(messages.NodeMessageError) as refused:
        messages.command_decode(raw)
    assert messages.command_refusal(raw, refused.value) is None


# --- a node refusing commands ---------------------------------------------------------


def loopback_config(media_start_timeout_ms: int = 10_000) -> NodeConfig:
    # The deployed default bitrate cap, so every node test runs with REMB on.
    return NodeConfig(host_ip="127.0.0.1", udp_ports=None, video_codec="VP8", ice_servers=(),
                      media_start_timeout_ms=media_start_timeout_ms, max_video_kbps=settings.ROOM_MAX_VIDEO_KBPS)


async def report_on(layer: InMemoryChannelLayer, channel: str, timeout: float = 10) -> messages.AnyReport:
    return messages.report_decode(await asyncio.wait_for(layer.receive(channel), timeout))


async def test_a_node_refuses_what_it_cannot_read_and_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    use_host_address("127.0.0.1")
    layer = InMemoryChannelLayer()
    node = MediaNode(layer, loopback_config())
    await node.start()
    client = await layer.new_channel("client.")
    publisher, offer = await publisher_offer()
    publish = messages.PublishCommand(
        request_id="q1", reply_to=client, room="r", room_id="live-r", stream="s1", participant="alice",
        kind="camera", sdp=offer,
    )
    try:
        with caplog.at_level(logging.ERROR, logger="rooms.media.node"):
            await layer.send(node.channel, {**messages.message_encode(publish), "v": 2})
            refused = await report_on(layer, client)
            assert isinstance(refused, messages.FailedReport)
            assert (refused.request_id, refused.room, refused.stream, refused.reason) == (
                "q1", "r", "s1", "version_not_supported"
            )

            await layer.send(node.channel, {**messages.message_encode(publish), "sdp": None})
            malformed = await report_on(layer, client)
            assert isinstance(malformed, messages.FailedReport) and malformed.reason == "bad_command"

            # Nowhere to answer: only the log says it.
            await layer.send(node.channel, {"v": 1, "type": "media.unpublish", "room": "r"})
            await layer.send(node.channel, {"v": 1, "type": "media.teleport"})
            await asyncio.sleep(0.2)
        refusals = [record.getMessage() for record in caplog.records if "refuses" in record.getMessage()]
        assert len(refusals) == 4, refusals
        assert "version_not_supported" in refusals[0] and "bad_command" in refusals[1]

        # Still serving: a good publish is answered and its media arrives.
        await layer.send(node.channel, messages.message_encode(publish))
        answer = await report_on(layer, client)
        assert isinstance(answer, messages.AnswerReport), answer
        assert (answer.request_id, answer.stream, answer.player) == ("q1", "s1", None)
        assert answer.codecs == {"video": "VP8", "audio": "opus"}
        await publisher.pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
        publishing = await report_on(layer, client)
        assert publishing == messages.PublishingReport(room="r", stream="s1", codecs=answer.codecs)
        load = node.load()
        assert (load.published, load.played, load.rooms, load.pid) == (1, 0, 1, os.getpid())
        assert load.cpu > 0  # accepting the offer and its media took CPU since the node started
    finally:
        await node.shutdown()
        await publisher.pc.close()
    stopped = await report_on(layer, client)
    assert stopped == messages.FailedReport(room="r", stream="s1", reason="node_stopped")


# --- the protocol's documentation ------------------------------------------------------

ARCHITECTURE = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"


def node_protocol_examples() -> list[dict[str, Any]]:
    """The JSON examples of docs/architecture.md's "The node protocol" section."""
    text = ARCHITECTURE.read_text()
    section = text.split("\n## The node protocol\n", 1)[1].split("\n## ", 1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", section, re.DOTALL)]


def test_the_documented_examples_are_valid_messages_and_cover_every_one() -> None:
    examples = node_protocol_examples()
    decoded = [
        (messages.report_decode if raw["type"] == "media.report" else messages.command_decode)(raw)
        for raw in examples
    ]
    for raw, message in zip(examples, decoded, strict=True):
        # Readers ignore unknown fields: a misspelt one in the doc would pass unseen.
        assert raw.keys() <= messages.message_encode(message).keys(), raw
    every_model = {*typing.get_args(typing.get_args(messages.Command)[0]),
                   *typing.get_args(typing.get_args(messages.AnyReport)[0])}
    assert {type(message) for message in decoded} == every_model
