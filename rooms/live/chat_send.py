"""A public chat message's live-state steps, taken together.

Sending a chat message checks the session's epoch (``rooms.live_epoch``),
takes a token from the sender identity's bucket (``rooms.live.rates``),
counts the room's event and keeps the message in the recent history
(``LiveState.room_chat_post``) and queues its archive entry, which needs
that count (``rooms.live.outbox``). In Redis these are one Lua script, one
round trip (``RedisChatSend``), which also publishes the message's event to
the room when the channel layer is on the same Redis (``publish_channel``);
in memory, the same steps one after the other (``MemoryChatSend``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from rooms.live.contract import LiveState
from rooms.live.outbox import OutboxStore
from rooms.live.rates import RateLimits
from rooms.live.redis import decoded, lua_source

_CHAT_SEND = lua_source("chat_send")
# An outbox entry's JSON object ends with its arguments' object: the count
# goes in as the arguments' last member.
_ENTRY_END = "}}"


class Outcome(enum.Enum):
    SENT = "ok"
    # The live state's epoch is not the session's: it was lost meanwhile.
    EPOCH_CHANGED = "epoch"
    RATE_LIMITED = "rate"


@dataclass(frozen=True)
class ChatSend:
    room: str
    # The epoch the sending session lives under.
    epoch: str
    # The sender identity's bucket (``RateLimits`` key), its rate (0: none) and burst.
    bucket: str
    rate: float
    burst: int
    message_json: str
    history_length: int
    # The archive entry's JSON text without the room's event count (see ``entry_with_seq``).
    entry: str
    # The room's group channel on this Redis and the event's channel message
    # without its count (rooms.channel_layers.GroupPublication), for the
    # script to publish; empty: the caller sends the event.
    publish_channel: str = ""
    publish_head: bytes = b""


@dataclass(frozen=True)
class ChatSent:
    outcome: Outcome
    # The room's event count of the message (0 unless sent).
    seq: int = 0
    # Whether the event went out to the room with it (``publish_channel``).
    published: bool = False


def entry_with_seq(entry: str, seq: int) -> str:
    """The outbox entry ``entry`` with ``"seq": seq`` in its arguments."""
    if not entry.endswith(_ENTRY_END):
        raise ValueError("an outbox entry ends with its arguments' object")
    return f'{entry[: -len(_ENTRY_END)]},"seq":{seq}{_ENTRY_END}'


class ChatSendStore(Protocol):
    async def send(self, request: ChatSend) -> ChatSent: ...


class RedisChatSend:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._send = redis.register_script(_CHAT_SEND)

    async def send(self, request: ChatSend) -> ChatSent:
        entry_with_seq(request.entry, 0)  # checked here, not in Lua
        keys = [
            f"{self._prefix}:epoch",
            f"{self._prefix}:rate:{request.bucket}",
            f"{self._prefix}:room:{request.room}",
            f"{self._prefix}:room:{request.room}:chat",
            f"{self._prefix}:history:outbox",
        ]
        args: list[str | int | bytes] = [
            request.epoch, repr(float(max(request.rate, 0.0))), request.burst, request.message_json,
            request.history_length, request.entry[: -len(_ENTRY_END)], request.publish_channel, request.publish_head,
        ]
        result = await self._send(keys=keys, args=args)
        outcome = Outcome(decoded(result[0]))
        if outcome is not Outcome.SENT:
            return ChatSent(outcome)
        return ChatSent(outcome, int(result[1]), published=bool(request.publish_channel))


class MemoryChatSend:
    def __init__(self, state: LiveState, rate_limits: RateLimits, outbox: OutboxStore) -> None:
        self._state = state
        self._rate_limits = rate_limits
        self._outbox = outbox

    async def send(self, request: ChatSend) -> ChatSent:
        if await self._state.epoch_get() != request.epoch:
            return ChatSent(Outcome.EPOCH_CHANGED)
        if not await self._rate_limits.take(request.bucket, rate=request.rate, burst=request.burst):
            return ChatSent(Outcome.RATE_LIMITED)
        seq = await self._state.room_chat_post(
            name=request.room, message_json=request.message_json, history_length=request.history_length
        )
        await self._outbox.push(entry_with_seq(request.entry, seq))
        return ChatSent(Outcome.SENT, seq)
