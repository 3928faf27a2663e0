"""``manage.py medianodes``: the media nodes, their load, rooms and state."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rooms.live.context import process_context
from rooms.node_drain import nodes_status, status_row


class Command(BaseCommand):
    help = "List the media nodes: load (legs, CPU), placement score, rooms, draining or not."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON object per node, one per line")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL:
            raise CommandError("the node registry of a deployment is in Redis: set REDIS_URL as the servers do")
        rows = asyncio.run(_rows())
        if options["json"]:
            for row in rows:
                self.stdout.write(json.dumps(row))
            return
        if not rows:
            self.stdout.write("no media node is registered")
            return
        self.stdout.write(f"{'NODE':<44} {'HOST:PID':<22} {'STATE':<9} {'LEGS':>5} {'CPU':>5} {'SCORE':>7} ROOMS")
        for row in rows:
            state = "dead" if not row["alive"] else "draining" if row["draining"] else "live"
            legs = row["published"] + row["played"]
            rooms = ", ".join(row["rooms"]) or "-"
            self.stdout.write(
                f"{row['node']:<44} {row['host'] + ':' + str(row['pid']):<22} {state:<9} {legs:>5} "
                f"{row['cpu']:>5.2f} {row['score']:>7.1f} {len(row['rooms'])}: {rooms}"
            )


async def _rows() -> list[dict[str, Any]]:
    try:
        return [status_row(status) for status in await nodes_status()]
    finally:
        await process_context().close()
