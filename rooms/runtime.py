"""The background work every web process does: heartbeat and sweep.

Daphne has no lifespan events, so the loop starts with the first
connection or request a process serves (``ensure_started``). The heartbeat
tells other processes this one is alive; when it stops (the process was
killed), a sweep anywhere drops its sessions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from channels.layers import get_channel_layer
from django.conf import settings

from rooms import history, live_epoch, services
from rooms.channel_layers import ClosingChannelLayer
from rooms.database import db_call
from rooms.live.context import ProcessRuntime, process_context
from rooms.media.loops import cancelled
from rooms.media.timing import now_ms
from rooms.signals import media_nodes_dead

logger = logging.getLogger(__name__)

EVENTS_PROBE_TIMEOUT_S = 1.0


class Runtime:
    def __init__(self) -> None:
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        # Whether a heartbeat of this process reached the live state yet.
        self._registered = False
        # When the live state last took this process's heartbeat (0: never);
        # /readyz reads it.
        self.last_heartbeat_ms = 0
        # Since when this process's heartbeats have reached the live state
        # without a failure between them (None: the last one failed).
        self._reachable_since_ms: int | None = None
        # Whether events published now reach this process's consumers. A
        # channel layer's subscription connection that Redis dropped is
        # opened again (and its channels subscribed again) only when it is
        # next read: until then every event for this process is lost. After
        # a failed heartbeat this is False until a probe sent through the
        # layer to this process came back; requests are refused meanwhile.
        self.hears_events = True

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rooms-runtime")

    async def ready(self) -> None:
        await self._ready.wait()

    async def _run(self) -> None:
        state = process_context().live_state
        try:
            if not settings.REDIS_URL:
                # The in-memory live state starts empty: rooms left open by
                # an earlier run of this process can never be joined again.
                # Likewise every media node of that run is dead (told first,
                # so the rooms' mixes find its stream records settled).
                await media_nodes_dead.asend(sender=None, alive=set())
                count = await db_call(history.rooms_finalize_orphaned)()
                if count:
                    logger.info("finalized %d rooms left open by an earlier run", count)
            await live_epoch.epoch_current()
            await state.process_heartbeat(self.process_id, now_ms())
            self._registered = True
            self.last_heartbeat_ms = now_ms()
        except Exception:
            logger.exception("first heartbeat failed; retrying in the loop")
        finally:
            # Connections are served (and fail request by request) rather
            # than hang while the live state is unreachable.
            self._ready.set()
        heartbeat = settings.HEARTBEAT_INTERVAL_MS / 1000
        sweep = settings.SWEEP_INTERVAL_MS / 1000
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while not cancelled():
            beaten = False
            try:
                await self._beat()
                beaten = True
                if self._reachable_since_ms is None:
                    self._reachable_since_ms = now_ms()
                if not self.hears_events:
                    self.hears_events = await events_probe()
                # Only on a state this process has just checked: a sweep must
                # never finalize rooms from a state that was lost meanwhile.
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + sweep
                    await services.rooms_sweep(judge_processes=self._may_judge_processes())
            except Exception:
                if not beaten:
                    self._reachable_since_ms = None
                    self.hears_events = False
                logger.exception("room sweep failed; retrying")
            await asyncio.sleep(min(heartbeat, sweep))

    def _may_judge_processes(self) -> bool:
        """Whether this process may take others for dead by their heartbeats.

        Not until its own heartbeats have reached the live state for one
        PRESENCE_TTL_MS: a process just back from an outage of Redis cannot
        tell a dead peer from one that was cut off as it was and has not
        beaten again yet (whichever swept first used to drop the other's
        sessions). Within that time every live peer beats again.
        """
        since = self._reachable_since_ms
        return since is not None and now_ms() - since >= settings.PRESENCE_TTL_MS

    async def _beat(self) -> None:
        """Heartbeat, and end this process's sessions if the live state lost them."""
        context = process_context()
        epoch_before = context.live_epoch
        registered = await context.live_state.process_heartbeat(self.process_id, now_ms())
        self.last_heartbeat_ms = now_ms()
        await live_epoch.epoch_current()
        if self._registered and not registered and context.live_epoch == epoch_before:
            # Not a lost state (that ended the sessions already): a sweep took
            # this process for dead (it could not reach Redis for longer than
            # PRESENCE_TTL_MS) and dropped its sessions from their rooms.
            await live_epoch.sessions_forgotten()
        self._registered = True


async def events_probe() -> bool:
    """Whether a message sent through the channel layer now reaches this process.

    The probe's channel is subscribed on the layer's subscription
    connection after every channel already there, so its arrival shows
    those are subscribed again too.
    """
    layer = get_channel_layer()
    assert layer is not None
    channel = await layer.new_channel("probe.")
    try:
        await layer.send(channel, {"type": "runtime.probe"})
        async with asyncio.timeout(EVENTS_PROBE_TIMEOUT_S):
            await layer.receive(channel)
        return True
    except TimeoutError:
        logger.warning("a probe sent through the channel layer did not come back within %s s", EVENTS_PROBE_TIMEOUT_S)
        return False
    finally:
        if isinstance(layer, ClosingChannelLayer):
            await layer.channel_close(channel)


async def ensure_started() -> ProcessRuntime:
    """This event loop's runtime, started on first use."""
    context = process_context()
    runtime = context.runtime
    if runtime is None:
        started = Runtime()
        started.start()
        runtime = context.runtime = started
    await runtime.ready()
    return runtime
