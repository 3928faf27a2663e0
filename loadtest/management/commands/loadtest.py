"""``manage.py loadtest URL``: simulated rooms against a running server (see loadtest/)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from loadtest import config as load_config
from loadtest.progress import Progress
from loadtest.report import render_text
from loadtest.runner import LoadTestAbort, Run

# Their INFO lines (every ICE check of every peer connection) would bury the progress line.
QUIET_LOGGERS = ("aioice", "aiortc")

# Exit statuses: 1 the run failed its thresholds, 2 it could not run at all.
EXIT_FAILED, EXIT_ABORTED = 1, 2


class Command(BaseCommand):
    help = ("Fill rooms of a running server with simulated publishers, subscribers and chat; report join time, "
            "first-frame latency, fps and loss, chat latency and loss, and errors.")

    def add_arguments(self, parser: CommandParser) -> None:
        load_config.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = load_config.from_options(options, api_keys=settings.API_KEYS,
                                              media_host_ip=settings.MEDIA_HOST_IP)
        except load_config.ConfigError as error:
            raise CommandError(str(error), returncode=EXIT_ABORTED) from None
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        progress = Progress(sys.stderr)
        try:
            report = asyncio.run(Run(config, progress).run())
        except LoadTestAbort as error:
            raise CommandError(f"the load test could not start: {error}", returncode=EXIT_ABORTED) from None
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            self.stdout.write(render_text(report))
        if not report["passed"]:
            sys.exit(EXIT_FAILED)
