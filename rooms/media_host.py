"""The media nodes a process hosts, kept alive in the node registry.

``MediaNodeHost`` starts a node and writes its heartbeat (the node's load
report) to the stream registry, where web processes place new rooms on the
least loaded node and find dead ones. A ``runmedianode`` process hosts one node; with
``MEDIA_NODES=embedded`` each web process hosts its own in the loop's
``rooms.live.context``, started on first use and stopped with daphne.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from rooms.live.context import process_context
from rooms.live.registry import StreamRegistry
from rooms.media.config import NodeConfig
from rooms.media.loops import cancelled
from rooms.media.node import MediaNode
from rooms.media.timing import now_ms
from rooms.media.traffic_rates import WINDOW_MS, TrafficRates

logger = logging.getLogger(__name__)

# A node that takes longer than this to finish its streams at shutdown is
# left to the sweeps of the processes that remain (its records: PARTIAL).
SHUTDOWN_TIMEOUT_S = 10


class MediaNodeHost:
    def __init__(self, node: MediaNode, *, registry: StreamRegistry) -> None:
        self.node = node
        self.registry = registry
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._traffic_rates = TrafficRates()

    async def start(self) -> None:
        await self.node.start()
        await self._heartbeat()
        self._heartbeat_task = asyncio.get_running_loop().create_task(
            self._heartbeats(), name="media-node-heartbeat"
        )

    async def _heartbeat(self) -> None:
        try:
            self.node.metrics_read()
        except Exception:
            # Metrics are no reason to miss a heartbeat (the node would be declared dead).
            logger.exception("reading the media node's metrics failed")
        load = self.node.load()
        await self.registry.node_heartbeat(load.node, load.at_ms, load)
        await self._traffic_publish()

    async def _traffic_publish(self) -> None:
        """Write the node's live rates for the operator's live view (never at the heartbeat's cost)."""
        try:
            traffic = self._traffic_rates.read(
                self.node.channel, (publication.stream for publication in self.node.publications.values()),
                self.node.played.values(), now_ms(),
            )
            # Outlives a missed heartbeat or two, not a stopped node.
            ttl_ms = 3 * max(settings.HEARTBEAT_INTERVAL_MS, WINDOW_MS)
            await process_context().node_traffic.node_traffic_put(traffic, ttl_ms=ttl_ms)
        except Exception:
            logger.exception("writing the media node's live rates failed")

    async def _heartbeats(self) -> None:
        while not cancelled():
            await asyncio.sleep(settings.HEARTBEAT_INTERVAL_MS / 1000)
            try:
                await self._heartbeat()
            except Exception:
                logger.exception("media node heartbeat failed")

    async def stop(self) -> None:
        """Shut the node down; its publishers hear ``node_stopped``."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        await self.node.shutdown()
        # Dead from now on: the next sweep of any process ends the streams
        # the node held no connection for yet (publishes still on their way).
        await self.registry.node_heartbeat(self.node.channel, 0)


async def local_media_node() -> MediaNode:
    """This event loop's in-process media node, started on first use."""
    context = process_context()
    async with context.media_node_starting:
        host = context.media_node_host
        if host is None:
            layer = get_channel_layer()
            assert layer is not None
            started = MediaNodeHost(MediaNode(layer, NodeConfig.from_settings()), registry=context.stream_registry)
            await started.start()
            host = context.media_node_host = started
            _stop_with_server(started)
    return host.node


def _stop_with_server(host: MediaNodeHost) -> None:
    """Finish the node's streams and records when daphne shuts down (SIGTERM).

    Daphne runs on Twisted's asyncio reactor and has no ASGI lifespan; a
    "before shutdown" trigger that returns a Deferred holds the reactor
    until the node has closed its files.
    """
    reactor: Any = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not getattr(reactor, "running", False):
        return
    from twisted.internet.defer import Deferred

    def shutdown() -> Deferred[None]:
        return Deferred.fromFuture(asyncio.ensure_future(asyncio.wait_for(host.stop(), SHUTDOWN_TIMEOUT_S)))

    reactor.addSystemEventTrigger("before", "shutdown", shutdown)
