"""The one place a process keeps its live objects.

Redis clients and background tasks belong to the event loop that made
them, and a process may run more than one loop (tests run one per case, a
Celery task one per call), so there is one context per running loop, and
each of its members is made on first use. ``process_contexts_reset``
forgets them all: tests start each case from nothing.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

from django.conf import settings
from redis.asyncio import Redis

from rooms.delivery_tally import ChatDeliveryTally
from rooms.history_outbox import HistoryOutbox
from rooms.live.chat_send import ChatSendStore, MemoryChatSend, RedisChatSend
from rooms.live.contract import LiveState
from rooms.live.memory import MemoryLiveState
from rooms.live.node_traffic import MemoryNodeTraffic, NodeTrafficStore, RedisNodeTraffic
from rooms.live.outbox import MemoryOutboxStore, RedisOutboxStore
from rooms.live.rates import MemoryRateLimits, RateLimits, RedisRateLimits
from rooms.live.redis import RedisLiveState, redis_client
from rooms.live.registry import MemoryStreamRegistry, RedisStreamRegistry, StreamRegistry
from rooms.media.node import MediaNode


class ProcessRuntime(Protocol):
    """What the context holds of the process's background work (``rooms.runtime``)."""

    process_id: str
    last_heartbeat_ms: int
    hears_events: bool

    async def ready(self) -> None: ...


class HostedMediaNode(Protocol):
    """What the context holds of the in-process media node and its heartbeat (``rooms.media_host``)."""

    node: MediaNode


class LiveConnection(Protocol):
    """A WebSocket connection of this process, as the live state's loss needs it (``rooms.live_epoch``)."""

    def live_epoch(self) -> str | None:
        """The epoch its session was opened under; None without a session."""
        ...

    async def state_lost(self) -> None:
        """End its session with ``DISCONNECTED`` ``state_lost``."""
        ...


class AddressConnections:
    """The WebSocket connections open in this process, by client address."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def take(self, address: str, limit: int) -> bool:
        """Count one more connection from ``address``, unless it has ``limit`` (0: no limit)."""
        count = self._open.get(address, 0)
        if limit and count >= limit:
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self._open.pop(address, 0) - 1
        if count > 0:
            self._open[address] = count


class ProcessContext:
    """One event loop's live state, stream registry, shared rate limits,
    history outbox, runtime and in-process media node."""

    def __init__(self) -> None:
        self._redis: Redis | None = None
        self._live_state: LiveState | None = None
        self._stream_registry: StreamRegistry | None = None
        self._rate_limits: RateLimits | None = None
        self._history_outbox: HistoryOutbox | None = None
        self._chat_send: ChatSendStore | None = None
        self._node_traffic: NodeTrafficStore | None = None
        # Made and started by their owners (rooms.runtime, rooms.media_host):
        # they build on services that use this context.
        self.runtime: ProcessRuntime | None = None
        self.media_node_host: HostedMediaNode | None = None
        self.media_node_starting = asyncio.Lock()
        # CONNECTIONS_PER_IP is counted here: per process, as daphne runs one loop.
        self.connections_by_address = AddressConnections()
        # Every open WebSocket connection, and the live state's epoch their
        # sessions belong to: when it changes, they all end (rooms.live_epoch).
        self.connections: set[LiveConnection] = set()
        self.live_epoch: str | None = None
        self.live_epoch_changing = asyncio.Lock()
        self.chat_deliveries = ChatDeliveryTally()

    def _redis_client(self) -> Redis:
        # One client (and connection pool) for the live state and the registry.
        if self._redis is None:
            self._redis = redis_client(settings.REDIS_URL)
        return self._redis

    @property
    def live_state(self) -> LiveState:
        state = self._live_state
        if state is None:
            if settings.REDIS_URL:
                state = RedisLiveState(self._redis_client(), settings.LIVE_STATE_PREFIX)
            else:
                state = MemoryLiveState()
            self._live_state = state
        return state

    @property
    def stream_registry(self) -> StreamRegistry:
        registry = self._stream_registry
        if registry is None:
            if settings.REDIS_URL:
                registry = RedisStreamRegistry(self._redis_client(), settings.LIVE_STATE_PREFIX)
            else:
                registry = MemoryStreamRegistry()
            self._stream_registry = registry
        return registry

    @property
    def rate_limits(self) -> RateLimits:
        """Limits shared by a client's connections (joins per address, chat per identity)."""
        limits = self._rate_limits
        if limits is None:
            if settings.REDIS_URL:
                limits = RedisRateLimits(self._redis_client(), settings.LIVE_STATE_PREFIX)
            else:
                limits = MemoryRateLimits()
            self._rate_limits = limits
        return limits

    @property
    def history_outbox(self) -> HistoryOutbox:
        outbox = self._history_outbox
        if outbox is None:
            if settings.REDIS_URL:
                outbox = HistoryOutbox(RedisOutboxStore(self._redis_client(), settings.LIVE_STATE_PREFIX))
            else:
                outbox = HistoryOutbox(MemoryOutboxStore())
            self._history_outbox = outbox
        return outbox

    @property
    def chat_send(self) -> ChatSendStore:
        """A public chat message's live-state steps in one (``rooms.live.chat_send``)."""
        store = self._chat_send
        if store is None:
            if settings.REDIS_URL:
                store = RedisChatSend(self._redis_client(), settings.LIVE_STATE_PREFIX)
            else:
                store = MemoryChatSend(self.live_state, self.rate_limits, self.history_outbox.store)
            self._chat_send = store
        return store

    @property
    def node_traffic(self) -> NodeTrafficStore:
        """Each media node's live rates, as its heartbeat wrote them (the operator's live view)."""
        store = self._node_traffic
        if store is None:
            if settings.REDIS_URL:
                store = RedisNodeTraffic(self._redis_client(), settings.LIVE_STATE_PREFIX)
            else:
                store = MemoryNodeTraffic()
            self._node_traffic = store
        return store

    async def close(self) -> None:
        """Close the Redis connections (before a short-lived loop ends).

        A drain under way finishes first (or gives up after its wait), so
        it does not die holding the outbox's lock.
        """
        if self._history_outbox is not None:
            await self._history_outbox.settle()
        if self._redis is not None:
            await self._redis.aclose()


_contexts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ProcessContext] = weakref.WeakKeyDictionary()


def process_context() -> ProcessContext:
    """The running event loop's context, made on first use."""
    loop = asyncio.get_running_loop()
    context = _contexts.get(loop)
    if context is None:
        context = _contexts[loop] = ProcessContext()
    return context


async def process_context_close() -> None:
    """Close the running loop's context and forget it (before a short-lived
    loop ends, as a Celery task's does).

    Forgetting matters: the context's Redis connections refer to the loop,
    so a weak-keyed entry whose value refers to its own key is never
    collected, and each task call kept its loop and clients alive (~140 KB).
    """
    loop = asyncio.get_running_loop()
    context = _contexts.pop(loop, None)
    if context is not None:
        await context.close()


def process_contexts_reset() -> None:
    """Forget every loop's context: live state in memory starts empty again."""
    _contexts.clear()
