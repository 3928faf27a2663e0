"""Channel layers whose per-channel queues are bounded and never drop silently.

Every message for a consumer waits in its process in a per-channel queue
until the consumer takes it. Channels' in-memory layer bounds that queue
(``capacity``) but drops what does not fit without a word (``group_send``
swallows ``ChannelFull``); channels_redis's pub/sub layer (4.x) makes an
unbounded ``asyncio.Queue`` per channel, so one consumer that stops taking
messages (stuck awaiting a slow database, say) while its rooms are busy
grows the process without limit. Neither layer has a hook for a bound and a
policy, hence these subclasses.

The policy when a channel's queue holds ``capacity`` messages and another
arrives: everything waiting is dropped, the drop is counted (the layer's
``dropped_messages``, for the whole process) and logged once at WARNING, and
a single ``{"type": "channel.overflow", "dropped": n}`` takes the queue's
place. The consumer finds it before anything sent after the gap and ends
its connection (``slow_consumer``), so its client reconnects to a fresh
state instead of going on with messages missing. A queue therefore never
holds more than ``capacity`` messages; a consumer still stuck when the
queue fills again drops it again, logged again: one line per ``capacity``
messages, never one per message.

The pub/sub layer decodes a group's message once per process, not once
per member: every member's queue holds the same decoded message (consumers
read it, never change it; ``rooms.frames`` adds the frame made from it).
At 5000 deliveries a second that was one msgpack decode per delivery.

Each also has ``channel_close``, called when a consumer ends: channels_redis
forgets a channel (its queue, its Redis subscription) only when a
``receive`` waiting on it is cancelled, which misses the consumer whose
channel message arrived together with its disconnect (its receive had
finished, so nothing is cancelled). Under churn every such connection left
its queue behind: the web processes grew by megabytes an hour.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import msgpack
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close, decode_hosts

logger = logging.getLogger(__name__)

OVERFLOW_TYPE = "channel.overflow"


def overflow_message(dropped: int) -> dict[str, Any]:
    """What a consumer receives in place of the messages its queue dropped."""
    return {"type": OVERFLOW_TYPE, "dropped": dropped}


class DropCount:
    """The messages one process's layer dropped, all channels together."""

    def __init__(self) -> None:
        self.messages = 0
        self.overflows = 0

    def record(self, channel: str, dropped: int, capacity: int) -> None:
        self.messages += dropped
        self.overflows += 1
        logger.warning(
            "channel %s overflowed its queue of %d messages: dropped %d and told its consumer to close"
            " (this process has dropped %d messages in %d overflows; CHANNEL_QUEUE_MAX)",
            channel, capacity, dropped, self.messages, self.overflows,
        )


class OverflowQueue(asyncio.Queue[Any]):
    """A pub/sub channel's queue of serialized messages, at most ``maxsize`` long."""

    def __init__(self, channel: str, maxsize: int, serialize: Any, drops: DropCount) -> None:
        super().__init__(maxsize=maxsize)
        self._channel = channel
        self._serialize = serialize
        self._drops = drops
        self._notice: object = None

    def put_nowait(self, item: Any) -> None:
        # The layer's receive task calls this for every message from Redis;
        # asyncio.Queue would raise QueueFull there, which the task logs as
        # an error and answers by sleeping a second: lost for every member.
        if not self.full():
            super().put_nowait(item)
            return
        dropped = 1
        while not self.empty():
            # An earlier overflow's notice is replaced, not counted as a message.
            if self.get_nowait() is not self._notice:
                dropped += 1
        self._notice = self._serialize(overflow_message(dropped))
        super().put_nowait(self._notice)
        self._drops.record(self._channel, dropped, self.maxsize)


@runtime_checkable
class ClosingChannelLayer(Protocol):
    """A channel layer told when a consumer's channel is done with."""

    async def channel_close(self, channel: str) -> None:
        """Forget ``channel``: its queue, its groups, its subscription."""
        ...


class DecodeOnceShardConnection(RedisSingleShardConnection):  # type: ignore[misc]
    """A Redis connection of the pub/sub layer that decodes a group's message
    once for all the group's channels in this process (as the parent's
    ``_receive_message`` otherwise)."""

    def _receive_message(self, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        name, data = message["channel"], message["data"]
        if isinstance(name, bytes):
            name = name.decode()
        layer = self.channel_layer
        if name in layer.channels:
            layer.channels[name].put_nowait(data)
            return
        members = layer.groups.get(name)
        if not members:
            return
        decoded = layer.channel_layer.deserialize(data)
        for channel in members:
            queue = layer.channels.get(channel)
            if queue is not None:
                queue.put_nowait(decoded)


class BoundedPubSubLoopLayer(RedisPubSubLoopLayer):  # type: ignore[misc]
    """channels_redis's per-loop pub/sub layer with ``OverflowQueue`` queues
    and group messages decoded once (``DecodeOnceShardConnection``)."""

    def __init__(self, hosts: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(hosts, *args, **kwargs)
        self._shards = [DecodeOnceShardConnection(host, self) for host in decode_hosts(hosts)]

    async def _subscribe_to_channel(self, channel: str) -> None:
        layer = self.channel_layer
        self.channels[channel] = OverflowQueue(channel, layer.capacity, layer.serialize, layer.drops)
        await self._get_shard(channel).subscribe(channel)

    async def channel_close(self, channel: str) -> None:
        for group_channel, members in list(self.groups.items()):
            if channel in members:
                members.discard(channel)
                if not members:
                    del self.groups[group_channel]
                    await self._get_shard(group_channel).unsubscribe(group_channel)
        if self.channels.pop(channel, None) is not None:
            await self._get_shard(channel).unsubscribe(channel)


@dataclass(frozen=True)
class GroupPublication:
    """A group message as a Lua script on the layer's Redis publishes it itself.

    ``channel`` is the group's Redis channel; ``head`` the serialized
    message up to its last member's value, which the script appends
    (``cmsgpack.pack``): a value only the script knows, such as a count it
    takes in the same step.
    """

    address: str
    channel: str
    head: bytes


class BoundedPubSubChannelLayer(RedisPubSubChannelLayer):  # type: ignore[misc]
    """Redis pub/sub layer with each channel's queue bounded at ``capacity``."""

    def __init__(self, *args: Any, capacity: int = 1000, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self.drops = DropCount()
        hosts = decode_hosts(kwargs.get("hosts", args[0] if args else None))
        serializer = self._serializer
        # Another party can publish this layer's messages only when they are
        # plain msgpack (no encryption, no random prefix) on one Redis.
        self._one_address: str | None = (
            hosts[0].get("address")
            if len(hosts) == 1
            and type(serializer).as_bytes is msgpack.packb
            and getattr(serializer, "crypter", None) is None
            and serializer.random_prefix_length == 0
            else None
        )

    def group_publication(self, group: str, message: dict[str, Any], last: str) -> GroupPublication | None:
        """``message`` to ``group`` for a script to publish with ``last`` as its last member (see
        ``GroupPublication``); None when only this layer can publish its messages."""
        if self._one_address is None:
            return None
        packer = msgpack.Packer()
        head = bytearray(packer.pack_map_header(len(message) + 1))
        for key, value in message.items():
            head += packer.pack(key) + packer.pack(value)
        head += packer.pack(last)
        return GroupPublication(self._one_address, self._get_layer()._get_group_channel_name(group), bytes(head))

    @property
    def dropped_messages(self) -> int:
        return self.drops.messages

    def deserialize(self, message: Any) -> Any:
        # A group's message arrives decoded already (DecodeOnceShardConnection).
        if isinstance(message, dict):
            return message
        return super().deserialize(message)

    def _get_layer(self) -> BoundedPubSubLoopLayer:
        # As the parent's, with the bounded loop layer.
        loop = asyncio.get_running_loop()
        layer: BoundedPubSubLoopLayer | None = self._layers.get(loop)
        if layer is None:
            layer = BoundedPubSubLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer

    async def channel_close(self, channel: str) -> None:
        await self._get_layer().channel_close(channel)


class BoundedInMemoryChannelLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """Channels' in-memory layer whose full queues follow the overflow policy
    instead of raising ``ChannelFull`` (which ``group_send`` swallows)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drops = DropCount()

    @property
    def dropped_messages(self) -> int:
        return self.drops.messages

    async def channel_close(self, channel: str) -> None:
        self._remove_from_groups(channel)
        self.channels.pop(channel, None)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        try:
            await super().send(channel, message)
        except ChannelFull:
            queue = self.channels[channel]
            dropped = 1
            while not queue.empty():
                # An earlier overflow's notice is replaced, not counted as a message.
                if queue.get_nowait()[1].get("type") != OVERFLOW_TYPE:
                    dropped += 1
            # Entries are (expires at, message), as the parent queues them.
            queue.put_nowait((time.time() + self.expiry, overflow_message(dropped)))
            self.drops.record(channel, dropped, queue.maxsize)

