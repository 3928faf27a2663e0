"""Run the embedded server: daphne plus a Celery worker with beat.

One command for a newcomer's machine: it migrates, starts both processes,
prints the URL, and stops both on Ctrl-C (or when either one dies).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from rooms.lan import interface_addresses, self_signed_certificate
from rooms.protocol import MAX_FRAME_BYTES

logger = logging.getLogger(__name__)

ALL_INTERFACES = ("0.0.0.0", "::")
# daphne closes WebSockets after 24 h by default, and a meeting may be
# longer. The transport refuses a WebSocket message or frame over the
# protocol's 64 KiB (close 1009) before buffering it; each connection also
# sets this itself (rooms.transport), so a daphne started without these
# options refuses the same frames.
DAPHNE_OPTIONS = (
    "--websocket_timeout", "-1",
    "--websocket-max-message-size", str(MAX_FRAME_BYTES),
    "--websocket-max-frame-size", str(MAX_FRAME_BYTES),
)


class Command(BaseCommand):
    help = "Run daphne and a Celery worker with beat (the embedded default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-worker", action="store_true", help="Run daphne only.")
        parser.add_argument(
            "--self-signed",
            action="store_true",
            default=os.environ.get("SELF_SIGNED_TLS", "").lower() in ("1", "true", "yes"),
            help="Serve https:// with a certificate made for this machine, so browsers on other devices "
            "get the camera (they warn once about the certificate).",
        )

    def handle(self, *args: Any, host: str, port: int, no_worker: bool, self_signed: bool, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        if settings.CELERY_BROKER_URL.startswith("filesystem"):
            Path(settings.CELERY_BROKER_FOLDER, "processed").mkdir(parents=True, exist_ok=True)
        bin_dir = Path(sys.executable).parent
        lan = interface_addresses() if host in ALL_INTERFACES else []
        env = dict(os.environ)
        # The embedded default lets anyone who reaches it in (as it always
        # has); ROOM_AUTH=token in the environment turns tokens on.
        env.setdefault("ROOM_AUTH", "open")
        if lan and "ALLOWED_HOSTS" not in env:
            # Others on the network open the page by this machine's address.
            env["ALLOWED_HOSTS"] = ",".join([*settings.ALLOWED_HOSTS, *lan])
        scheme = "https" if self_signed else "http"
        if self_signed:
            certificate, key = self_signed_certificate(settings.VAR_DIR / "tls", lan or [host])
            endpoint = {"port": str(port), "interface": host, "privateKey": str(key), "certKey": str(certificate)}
            listen = ["-e", "ssl:" + ":".join(f"{name}={_endpoint_escape(value)}" for name, value in endpoint.items())]
        else:
            listen = ["-b", host, "-p", str(port)]
        children = [
            subprocess.Popen(
                [str(bin_dir / "daphne"), *listen, *DAPHNE_OPTIONS, "conference_site.asgi:application"], env=env
            )
        ]
        if not no_worker:
            children.append(
                subprocess.Popen(
                    [
                        str(bin_dir / "celery"), "-A", "conference_site", "worker", "--beat",
                        # A newcomer's terminal shows the worker's warnings only;
                        # a log collector gets what LOG_LEVEL asks for.
                        "--loglevel", settings.LOGGING["root"]["level"] if settings.LOG_FORMAT == "json" else "WARNING",
                        "--pool", "solo",
                        "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
                    ]
                )
            )
        shown_host = "127.0.0.1" if host in ALL_INTERFACES else host
        # The URL is printed once it answers: clicked at once, it must work.
        _wait_until_listening(shown_host, port, children[0])
        self._say(f"Conference server running: open {scheme}://{shown_host}:{port}/", success=True)
        for address in lan:
            self._say(f"On this network: {scheme}://{address}:{port}/")
        if lan and not self_signed:
            self._say(
                "Browsers on other devices give the camera only to https:// pages: "
                "add --self-signed (or SELF_SIGNED_TLS=true), or serve behind a TLS proxy with HTTPS=true."
            )
        if env["ROOM_AUTH"] == "open":
            self._say(
                "Rooms are open: anyone who reaches this server can join (ROOM_AUTH=token with API_KEYS requires "
                "signed access tokens)."
            )
        self._say("Admin: /admin/ (create an operator with: make superuser). Stop with Ctrl-C.")
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

    def _say(self, text: str, *, success: bool = False) -> None:
        """Tell the person who started the server; with LOG_FORMAT=json a log line like every other."""
        if settings.LOG_FORMAT == "json":
            logger.info("%s", text)
        else:
            self.stdout.write(self.style.SUCCESS(text) if success else text)


def _endpoint_escape(value: str) -> str:
    """``value`` inside a Twisted endpoint string, where ``:`` and ``\\`` separate fields."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _wait_until_listening(host: str, port: int, daphne: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and daphne.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
