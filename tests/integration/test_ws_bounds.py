"""Bounds of one WebSocket connection on a real daphne: lone surrogates,
oversize frames, and a client that stops reading."""

from __future__ import annotations

import pytest

from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ('{"type": "ping", "id": "\\ud800"}', "id"),
        ('{"type": "room.join", "id": "j1", "room": "a\\udc00b"}', "room"),
        ('{"type": "room.message", "id": "m1", "room": "r", "text": "hi", "to": ["\\ud83d"]}', "to.0"),
        ('{"type": "session.connect", "id": "c1", "username": "x\\udfff"}', "username"),
    ],
)
async def test_lone_surrogate_is_bad_request_and_the_socket_stays_open(start_server, frame: str, field: str) -> None:  # type: ignore[no-untyped-def]
    web = start_server("daphne", "web")
    client = await SocketClient.connected(web.ws_url, "alice")
    await client.send_raw(frame)
    reply = await client.next_frame()
    assert reply["type"] == "error" and reply["code"] == "bad_request", reply
    assert reply["message"].startswith(f"{field}:"), reply
    # The request id is echoed only when it is itself valid.
    assert reply["re"] == (None if field == "id" else frame.split('"id": "')[1].split('"')[0])
    assert (await client.request("ping"))["type"] == "pong"
    await client.close()
    assert "Traceback" not in web.log()
