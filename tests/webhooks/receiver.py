"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread.

It checks every request the way an application would, with
``standardwebhooks.Webhook(secret).verify(body, headers)``, keeps every
request in arrival order (duplicates included, so a test can count them),
and can be down: its port is bound from the start, so nobody else takes
it, but it refuses connections until ``up()`` starts listening.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    # The verified payload, or None with the reason verification failed.
    payload: dict[str, Any] | None
    verify_error: str
    answered: int


class WebhookReceiver:
    def __init__(self, secret: str, *, answer: Callable[[str], int] = lambda webhook_id: 204) -> None:
        self.secret = secret
        # The status answered to a request, by its webhook-id (after verification).
        self.answer = answer
        self.received: list[Received] = []
        self.changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class(), bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.server_bind()  # bound, not listening: connections are refused until up()
        self.port: int = self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        self.server.server_activate()
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(5)
        self.server.server_close()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(self.received):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"the receiver never got there; it has {self.summary()}")
                self.changed.wait(remaining)
            return list(self.received)

    def summary(self) -> list[tuple[str, str]]:
        with self.changed:
            return [(r.webhook_id, (r.payload or {}).get("type", r.verify_error)) for r in self.received]

    def delivered(self) -> list[Received]:
        """The verified requests that were answered 2xx, in arrival order, first copy of each id only."""
        seen: set[str] = set()
        first = []
        with self.changed:
            for request in self.received:
                if request.payload is not None and 200 <= request.answered < 300 and request.webhook_id not in seen:
                    seen.add(request.webhook_id)
                    first.append(request)
        return first

    def _record(self, received: Received) -> None:
        with self.changed:
            self.received.append(received)
            self.changed.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                webhook_id = headers.get("webhook-id", "")
                try:
                    payload = Webhook(receiver.secret).verify(body, headers)
                    error = ""
                except WebhookVerificationError as failure:
                    payload, error = None, str(failure)
                status = receiver.answer(webhook_id) if payload is not None else 401
                # Recorded before the answer leaves: once the sender has its
                # answer, the test sees the request.
                receiver._record(Received(webhook_id, headers, body, payload, error, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def payload_of(received: Received) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(received.body)
    return payload
