"""Bounded per-channel queues of the channel layers: a consumer that does not
take its messages while a flood of group messages arrives over real Redis."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from rooms.channel_layers import BoundedInMemoryChannelLayer, BoundedPubSubChannelLayer, OverflowQueue
from tests.conftest import TEST_REDIS_URL

CAP = 50
FLOOD = 10 * CAP + 7


def pubsub_layer(prefix: str) -> BoundedPubSubChannelLayer:
    return BoundedPubSubChannelLayer(hosts=[{"address": TEST_REDIS_URL}], prefix=prefix, capacity=CAP)


async def test_pubsub_queue_stays_bounded_and_the_consumer_is_told(caplog: pytest.LogCaptureFixture) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}:asgi"
    receiving, sending = pubsub_layer(prefix), pubsub_layer(prefix)
    try:
        channel = await receiving.new_channel()
        await receiving.group_add("room.flood", channel)
        queue = receiving._get_layer().channels[channel]
        assert isinstance(queue, OverflowQueue)
        caplog.set_level(logging.WARNING, logger="rooms.channel_layers")
        # The consumer does not take anything while the flood arrives through Redis.
        highest = 0
        for seq in range(FLOOD):
            await sending.group_send("room.flood", {"type": "room.event", "seq": seq, "text": "x" * 1000})
            highest = max(highest, queue.qsize())
        last = {"type": "room.event", "seq": FLOOD, "text": "last"}
        await sending.group_send("room.flood", last)
        deadline = asyncio.get_running_loop().time() + 10
        # The first overflow drops CAP + 1 messages, each later one CAP (its notice
        # replaced): after the last one, its notice and these remain.
        rest_count = FLOOD % CAP
        # Until everything sent has arrived: dropped or waiting (the queue's size
        # alone also passes rest_count + 1 while the flood is still arriving).
        while (
            receiving.dropped_messages + queue.qsize() < FLOOD + 2
            and asyncio.get_running_loop().time() < deadline
        ):
            highest = max(highest, queue.qsize())
            await asyncio.sleep(0.01)
        assert highest <= CAP
        overflows = [r for r in caplog.records if "overflowed" in r.getMessage()]
        # One line per overflow (one per CAP messages), not one per message.
        assert len(overflows) == (FLOOD + 1) // CAP, [r.getMessage() for r in overflows]
        assert all(r.levelno == logging.WARNING and channel in r.getMessage() for r in overflows)
        # Every message is either counted as dropped or delivered.
        assert receiving.dropped_messages == FLOOD + 1 - rest_count
        assert sending.dropped_messages == 0
        # The first thing the consumer finds is the overflow, before anything after the gap.
        first = await asyncio.wait_for(receiving.receive(channel), 5)
        assert first == {"type": "channel.overflow", "dropped": CAP}
        rest = [await asyncio.wait_for(receiving.receive(channel), 5) for _ in range(rest_count)]
        assert [m["seq"] for m in rest] == list(range(FLOOD + 1 - rest_count, FLOOD + 1))
        assert rest[-1] == last
    finally:
        await receiving.flush()
        await sending.flush()


async def test_pubsub_queue_below_the_cap_delivers_everything() -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}:asgi"
    receiving, sending = pubsub_layer(prefix), pubsub_layer(prefix)
    try:
        channel = await receiving.new_channel()
        await receiving.group_add("room.calm", channel)
        for seq in range(CAP):
            await sending.group_send("room.calm", {"type": "room.event", "seq": seq})
        got = [(await asyncio.wait_for(receiving.receive(channel), 5))["seq"] for _ in range(CAP)]
        assert got == list(range(CAP)) and receiving.dropped_messages == 0
    finally:
        await receiving.flush()
        await sending.flush()


async def test_pubsub_group_message_is_decoded_once_for_the_processs_members() -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}:asgi"
    receiving, sending = pubsub_layer(prefix), pubsub_layer(prefix)
    try:
        members = [await receiving.new_channel() for _ in range(3)]
        for channel in members:
            await receiving.group_add("room.many", channel)
        sent = {"type": "room.event", "seq": 7, "text": "{\"type\":\"room.message\"}", "event": {"n": [1, "ü"]}}
        await sending.group_send("room.many", sent)
        got = [await asyncio.wait_for(receiving.receive(channel), 5) for channel in members]
        # One decoded message, the same object in every member's queue.
        assert got[0] == sent and all(message is got[0] for message in got)
        # A message for one channel is its own.
        await sending.send(members[0], {"type": "client.send", "frame": {"n": 1}})
        assert await asyncio.wait_for(receiving.receive(members[0]), 5) == {"type": "client.send", "frame": {"n": 1}}
    finally:
        await receiving.flush()
        await sending.flush()


async def test_in_memory_group_send_overflow_is_counted_not_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    layer = BoundedInMemoryChannelLayer(capacity=CAP)
    channel = await layer.new_channel()
    await layer.group_add("room.flood", channel)
    caplog.set_level(logging.WARNING, logger="rooms.channel_layers")
    for seq in range(CAP + 3):
        await layer.group_send("room.flood", {"type": "room.event", "seq": seq})
    assert layer.dropped_messages == CAP + 1
    assert len([r for r in caplog.records if "overflowed" in r.getMessage()]) == 1
    assert await layer.receive(channel) == {"type": "channel.overflow", "dropped": CAP + 1}
    assert [(await layer.receive(channel))["seq"] for _ in range(2)] == [CAP + 1, CAP + 2]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.1)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BoundedPubSubChannelLayer(hosts=[{"address": TEST_REDIS_URL}], capacity=0)
