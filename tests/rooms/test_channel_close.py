"""A consumer's channel leaves the channel layer when the consumer ends,
however it ends: also when its last channel message arrives together with
its disconnect (channels_redis alone forgets a channel only when a pending
receive on it is cancelled, and there is none then)."""

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer

from rooms.channel_layers import BoundedInMemoryChannelLayer, BoundedPubSubChannelLayer
from tests.wsclient import ProtocolClient

pytestmark = pytest.mark.django_db(transaction=True)

CYCLES = 5


async def test_channels_of_ended_consumers_leave_the_pubsub_layer(redis_live_state: str) -> None:
    layer = get_channel_layer()
    assert isinstance(layer, BoundedPubSubChannelLayer)
    await layer.new_channel()  # the loop's layer exists before the baseline
    loop_layer = layer._get_layer()
    baseline = set(loop_layer.channels)
    for cycle in range(CYCLES):
        client = await ProtocolClient.connected(f"person{cycle}")
        assert (await client.request("room.join", room="churn"))["type"] == "room.state"
        assert (await client.request("room.message", room="churn", text=f"hello {cycle}"))["type"] == "ok"
        (channel,) = set(loop_layer.channels) - baseline
        shard = loop_layer._get_shard(channel)
        assert channel in shard._subscribed_to
        # A message for the connection and its disconnect arrive in the same
        # turn of the loop: the consumer stops with its channel's receive done.
        loop_layer.channels[channel].put_nowait(
            layer.serialize({"type": "client.send", "frame": {"type": "pong", "re": None}}))
        client.communicator.input_queue.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await client.communicator.wait(timeout=5)
        assert set(loop_layer.channels) == baseline, f"cycle {cycle}: {set(loop_layer.channels) - baseline}"
        assert channel not in shard._subscribed_to
        assert not any(channel in members for members in loop_layer.groups.values())
    assert not loop_layer.groups
    await layer.flush()  # its Redis connections and receive task end with the test's loop


async def test_in_memory_channel_close_forgets_queue_and_groups() -> None:
    layer = BoundedInMemoryChannelLayer(capacity=10)
    channel = await layer.new_channel()
    await layer.group_add("room.a", channel)
    await layer.group_send("room.a", {"type": "room.event", "seq": 1})
    assert channel in layer.channels
    await layer.channel_close(channel)
    assert channel not in layer.channels
    assert not any(channel in members for members in layer.groups.values())
