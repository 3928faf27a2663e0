"""One signed POST, checked by a real receiver with the standardwebhooks library."""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.webhooks.receiver import WebhookReceiver
from webhooks.sending import webhook_post

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
PAYLOAD = '{"type":"room_started","timestamp":"2026-01-02T03:04:05.000000Z","data":{"room":"Привет","room_id":"r1"}}'


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver(SECRET, answer=lambda webhook_id: 500 if webhook_id == "msg_broken" else 204)
    started.up()
    yield started
    started.close()


def post(url: str, webhook_id: str = "msg_1", payload: str = PAYLOAD, timeout_s: float = 5.0):  # type: ignore[no-untyped-def]
    return webhook_post(url=url, webhook_id=webhook_id, payload=payload, secret=SECRET, timeout_s=timeout_s)


def test_a_post_is_signed_per_standard_webhooks(receiver: WebhookReceiver) -> None:
    attempt = post(receiver.url)
    assert attempt.delivered and attempt.status_code == 204 and attempt.error == ""
    [received] = receiver.received
    assert received.verify_error == "" and received.payload == Webhook(SECRET).verify(received.body, received.headers)
    assert received.body == PAYLOAD.encode()
    assert received.headers["content-type"] == "application/json"
    assert received.headers["webhook-id"] == "msg_1"
    assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 5
    assert received.headers["webhook-signature"].startswith("v1,")


def test_a_wrong_secret_or_a_changed_body_fails_verification(receiver: WebhookReceiver) -> None:
    post(receiver.url)
    [received] = receiver.received
    other_secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(received.body, received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(received.body.replace(b"r1", b"r2"), received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(received.body, {**received.headers, "webhook-id": "msg_2"})


def test_a_receiver_with_another_secret_refuses_the_post() -> None:
    stranger = WebhookReceiver("whsec_" + base64.b64encode(os.urandom(32)).decode())
    stranger.up()
    try:
        attempt = post(stranger.url)
    finally:
        stranger.close()
    assert not attempt.delivered and attempt.status_code == 401
    assert stranger.received[0].payload is None and stranger.received[0].verify_error == "No matching signature found"


def test_an_error_answer_is_kept(receiver: WebhookReceiver) -> None:
    attempt = post(receiver.url, webhook_id="msg_broken")
    assert not attempt.delivered
    assert attempt.status_code == 500 and attempt.error.startswith("HTTP 500")


def test_a_receiver_that_is_down_is_an_error_not_an_exception() -> None:
    down = WebhookReceiver(SECRET)  # bound, not listening
    try:
        attempt = post(down.url)
    finally:
        down.close()
    assert attempt.status_code is None and "ConnectionRefused" in attempt.error


def test_a_silent_receiver_times_out() -> None:
    # Listening (the kernel accepts the connection) but never answering.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        attempt = post(f"http://127.0.0.1:{silent.getsockname()[1]}/hook", timeout_s=0.5)
        elapsed = time.monotonic() - started
    assert attempt.status_code is None and "timed out" in attempt.error
    assert 0.4 < elapsed < 3


class _Redirecting(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, str]] = []

    def do_POST(self) -> None:
        self.requests.append(("POST", self.path, self.headers.get("authorization", "")))
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(302)
        self.send_header("location", "/elsewhere")
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, ""))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_redirect_is_an_answer_not_followed_and_basic_auth_is_sent() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        attempt = post(f"http://hooks:s%3Acret@127.0.0.1:{server.server_address[1]}/hook?tenant=7")
    finally:
        server.shutdown()
        server.server_close()
    assert not attempt.delivered and attempt.status_code == 302
    expected_auth = "Basic " + base64.b64encode(b"hooks:s:cret").decode()
    assert _Redirecting.requests == [("POST", "/hook?tenant=7", expected_auth)]
