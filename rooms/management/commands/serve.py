"""Run the embedded server: daphne plus a Celery worker with beat.

One command for a newcomer's machine: it migrates, starts both processes,
prints the URL, and stops both on Ctrl-C (or when either one dies).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run daphne and a Celery worker with beat (the embedded default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-worker", action="store_true", help="Run daphne only.")

    def handle(self, *args: Any, host: str, port: int, no_worker: bool, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        if settings.CELERY_BROKER_URL.startswith("filesystem"):
            Path(settings.CELERY_BROKER_FOLDER, "processed").mkdir(parents=True, exist_ok=True)
        bin_dir = Path(sys.executable).parent
        children = [
            subprocess.Popen(
                # daphne closes WebSockets after 24 h by default; a meeting
                # may be longer.
                [str(bin_dir / "daphne"), "-b", host, "-p", str(port), "--websocket_timeout", "-1",
                 "conference_site.asgi:application"]
            )
        ]
        if not no_worker:
            children.append(
                subprocess.Popen(
                    [
                        str(bin_dir / "celery"), "-A", "conference_site", "worker", "--beat",
                        "--loglevel", "WARNING", "--pool", "solo",
                        "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
                    ]
                )
            )
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.stdout.write(self.style.SUCCESS(f"Conference server running: open http://{shown_host}:{port}/"))
        self.stdout.write("Admin: /admin/ (create an operator with: make superuser). Stop with Ctrl-C.")
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.2)
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [child for child in children if child.returncode not in (0, -signal.SIGTERM, None)]
        if failed and not stopping:
            raise SystemExit(f"a server process exited with status {failed[0].returncode}")
