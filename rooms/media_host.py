"""This event loop's in-process media node (``MEDIA_NODES=embedded``).

The node is started on first use and kept in the loop's
``rooms.live.context``; under daphne it finishes its streams and records
when the server shuts down.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from channels.layers import get_channel_layer

from rooms.live.context import process_context
from rooms.media.node import MediaNode

# A node that takes longer than this to finish its streams at shutdown is
# left to the sweeps of the processes that remain (its records: PARTIAL).
SHUTDOWN_TIMEOUT_S = 10


async def local_media_node() -> MediaNode:
    """This event loop's in-process media node, started on first use."""
    context = process_context()
    async with context.media_node_starting:
        node = context.media_node
        if node is None:
            layer = get_channel_layer()
            assert layer is not None
            node = MediaNode(layer, registry=context.stream_registry, live_state=context.live_state)
            await node.start()
            context.media_node = node
            _stop_with_server(node)
    return node


def _stop_with_server(node: MediaNode) -> None:
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
        return Deferred.fromFuture(asyncio.ensure_future(asyncio.wait_for(node.shutdown(), SHUTDOWN_TIMEOUT_S)))

    reactor.addSystemEventTrigger("before", "shutdown", shutdown)
