"""Run a media node: the WebRTC side of the rooms pinned to it.

Web processes started with MEDIA_NODES=external send publish and play
requests to nodes like this one over the channel layer (Redis).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ops.logs import log_context_bind
from rooms.live.context import process_context
from rooms.media.config import NodeConfig
from rooms.media.node import MediaNode
from rooms.media_host import MediaNodeHost

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run a media node (needs REDIS_URL, shared with the web processes)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL:
            raise CommandError("a separate media node needs REDIS_URL: the web processes reach it through Redis")
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        layer = get_channel_layer()
        assert layer is not None
        host = MediaNodeHost(MediaNode(layer, NodeConfig.from_settings()), registry=process_context().stream_registry)
        await host.start()
        # Every line of this process is about this node.
        log_context_bind(node=host.node.channel)
        logger.info("media node ready: %s (media on %s)", host.node.channel,
                    settings.MEDIA_HOST_IP or "every interface address")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await host.stop()
