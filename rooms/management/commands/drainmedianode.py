"""``manage.py drainmedianode NODE``: send no new room to a media node, and
say when its last room has ended (then it can be restarted)."""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rooms.live.context import process_context
from rooms.node_drain import (
    DrainProgress,
    NodeNotFound,
    node_alive,
    node_drain_set,
    node_drain_wait,
    node_find,
    nodes_status,
)


class Command(BaseCommand):
    help = (
        "Drain a media node: new rooms go to other nodes, its rooms stay until they end. "
        "Waits until its last room has ended, unless --no-wait."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("node", help="the node's channel (see `manage.py medianodes`), a unique part of it, "
                                         "or its host:pid")
        parser.add_argument("--no-wait", action="store_true", help="set the flag and return")
        parser.add_argument("--undo", action="store_true", help="let the node take new rooms again")
        parser.add_argument("--timeout", type=float, default=0,
                            help="give up waiting after this many seconds (exit status 1); default: no limit")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL:
            raise CommandError("the node registry of a deployment is in Redis: set REDIS_URL as the servers do")
        asyncio.run(self._run(options))

    async def _run(self, options: dict[str, Any]) -> None:
        try:
            await self._drain(options)
        except NodeNotFound as error:
            raise CommandError(str(error)) from None
        finally:
            await process_context().close()

    async def _drain(self, options: dict[str, Any]) -> None:
        status = node_find(await nodes_status(), options["node"])
        node = status.node
        if options["undo"]:
            await node_drain_set(node, draining=False)
            self.stdout.write(f"node {node} takes new rooms again")
            return
        if not node_alive(status):
            raise CommandError(f"node {node} is not heartbeating: nothing to drain")
        await node_drain_set(node, draining=True)
        # Read again: a room placed while the flag was on its way is on the node too.
        status = node_find(await nodes_status(), node)
        rooms = ", ".join(sorted(status.rooms)) or "none"
        self.stdout.write(f"node {node} is draining: new rooms go to other nodes; {_rooms(len(status.rooms))} on it: "
                          f"{rooms}")
        if options["no_wait"]:
            return

        def progress(step: DrainProgress) -> None:
            self.stdout.write(f"room {step.room_ended} ended ({len(step.left)} left)")
            self.stdout.flush()

        self.stdout.flush()
        outcome = await node_drain_wait(node, rooms=status.rooms, on_progress=progress, timeout_s=options["timeout"])
        if outcome == "empty":
            self.stdout.write(f"node {node} has no rooms left: it can be restarted")
        elif outcome == "dead":
            raise CommandError(f"node {node} stopped heartbeating before its last room ended")
        else:
            left = node_find(await nodes_status(), node).rooms
            raise CommandError(f"node {node} still has {_rooms(len(left))} after {options['timeout']:g} s: "
                               f"{', '.join(sorted(left))} (it stays draining)")


def _rooms(count: int) -> str:
    return f"{count} room" if count == 1 else f"{count} rooms"
