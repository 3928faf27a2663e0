"""CONNECTIONS_PER_IP on a real daphne: the connection over it is told why
and closed with 1008; once one closes, another gets in."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.wsclient import ORIGIN, SocketClient

pytestmark = pytest.mark.integration


async def refusal_of(url: str) -> tuple[dict[str, object], int | None]:
    """What a connection over the limit receives: its one frame and the close code."""
    async with connect(url, origin=ORIGIN, open_timeout=5) as socket:  # type: ignore[arg-type]
        frame = json.loads(await asyncio.wait_for(socket.recv(), 5))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(socket.recv(), 5)
        return frame, socket.close_code


async def test_connections_over_the_limit_are_refused_until_one_closes(start_server) -> None:  # type: ignore[no-untyped-def]
    web = start_server("daphne", "web", env={"CONNECTIONS_PER_IP": "2"})
    alice = await SocketClient.connected(web.ws_url, "alice")
    bob = await SocketClient.connected(web.ws_url, "bob")

    frame, code = await refusal_of(web.ws_url)
    assert frame == {"type": "session.status", "status": "DISCONNECTED", "reason": "too_many_connections"}
    assert code == 1008
    # The refused connection did not take a place, and the others go on.
    frame, code = await refusal_of(web.ws_url)
    assert frame["reason"] == "too_many_connections" and code == 1008
    assert (await alice.request("ping"))["type"] == "pong"

    await alice.close()
    # The server counts the close once its consumer has ended, which no
    # message announces: connect until it is in (or 5 s have passed).
    async with asyncio.timeout(5):
        while True:
            carol = await SocketClient.open(web.ws_url)
            reply = await carol.request("session.connect", username="carol")
            if reply.get("status") == "ESTABLISHED":
                break
            await carol.close()
            await asyncio.sleep(0.05)
    assert (await bob.request("ping"))["type"] == "pong"
    await carol.close()
    await bob.close()
    assert "Traceback" not in web.log()
