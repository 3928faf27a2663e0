"""Bounds of one WebSocket connection on a real daphne: lone surrogates,
oversize frames, and a client that stops reading."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.wsclient import ORIGIN, SocketClient

pytestmark = pytest.mark.integration

# Chat is the server's largest steady output; its rate limit is not under test here.
UNLIMITED_CHAT = {"CHAT_RATE_PER_SECOND": "1000000", "CHAT_RATE_BURST": "1000000"}


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


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


class RssPeak:
    """The highest RSS of a process, sampled every 20 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mib(self.pid))
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> RssPeak:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, rss_mib(self.pid))


async def non_reading_client(url: str, username: str, room: str) -> ClientConnection:
    """A session in ``room`` on a socket with a 4 KiB receive buffer whose
    owner will stop reading: websockets stops reading the socket once one
    message waits unread (``max_queue=1``), and the kernel buffer fills."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = url.split("//")[1].split("/")[0].split(":")
    sock.connect((host, int(port)))
    client = await connect(url, sock=sock, origin=ORIGIN, max_queue=1, open_timeout=5)  # type: ignore[arg-type]
    await client.send(json.dumps({"type": "session.connect", "id": "c", "username": username}))
    assert json.loads(await client.recv())["status"] == "ESTABLISHED"
    await client.send(json.dumps({"type": "room.join", "id": "j", "room": room}))
    assert json.loads(await client.recv())["type"] == "room.state"
    return client


async def test_a_client_that_stops_reading_is_disconnected_in_bounded_memory(start_server) -> None:  # type: ignore[no-untyped-def]
    web = start_server("daphne", "web", env=UNLIMITED_CHAT)
    assert web.process is not None
    bob = await SocketClient.connected(web.ws_url, "bob")
    await bob.request("room.join", room="slow")
    hog = await non_reading_client(web.ws_url, "hog", "slow")
    assert (await bob.event("room.joined"))["participant"]["name"] == "hog"
    baseline = rss_mib(web.process.pid)

    # The finding as reported: pings with a 40 KB id, never read. The id is
    # refused (not echoed), so the replies stay small.
    big_id = json.dumps({"type": "ping", "id": "i" * 40_000})
    async with RssPeak(web.process.pid) as pings:
        for _ in range(3000):
            await hog.send(big_id)
        # The server has read them all once it answers bob.
        assert (await bob.request("ping", timeout=30))["type"] == "pong"
    assert pings.peak - baseline < 64, (baseline, pings.peak)

    # Now make the server talk: every chat message comes back to the hog as an event.
    text = json.dumps({"type": "room.message", "room": "slow", "text": "x" * 4096})
    sent = 0
    async with RssPeak(web.process.pid) as chat:
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(60):
                while True:
                    await hog.send(text)
                    sent += 1
                    if sent % 100 == 0:
                        await asyncio.sleep(0)  # let the close arrive
        left = await bob.event("room.left", timeout=10)
    assert left["participant"] == {"name": "hog"} and left["reason"] == "disconnect"
    assert "stopped reading" in web.log()
    assert chat.peak - baseline < 64, (baseline, chat.peak, sent)
    assert "Traceback" not in web.log()
    await bob.close()
    after = rss_mib(web.process.pid)
    print(f"RSS MiB: baseline {baseline:.0f}, 40 KB-id pings peak {pings.peak:.0f}, chat peak {chat.peak:.0f} "
          f"({sent} messages sent before the close), after {after:.0f}")
    assert after - baseline < 32, (baseline, after)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param("x" * (64 * 1024 + 1), id="text over 64 KiB"),
        pytest.param(b"\x00" * (64 * 1024 + 1), id="binary over 64 KiB"),
        pytest.param("é" * (32 * 1024 + 1), id="text over 64 KiB of UTF-8"),
        pytest.param("x" * (2 * 1024 * 1024), id="text over daphne's own 1 MiB"),
    ],
)
async def test_an_oversize_frame_is_refused_by_the_transport_with_1009(start_server, frame: str | bytes) -> None:  # type: ignore[no-untyped-def]
    web = start_server("daphne", "web")
    bob = await SocketClient.connected(web.ws_url, "bob")
    await bob.request("room.join", room="big")
    hog = await SocketClient.connected(web.ws_url, "hog")
    await hog.request("room.join", room="big")
    await bob.event("room.joined")
    # Exactly 64 KiB is allowed: refused as JSON, the socket stays open.
    await hog.send_raw("y" * (64 * 1024))
    assert (await hog.next_frame())["code"] == "bad_request"
    await hog.socket.send(frame)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await hog.next_frame()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    left = await bob.event("room.left")
    assert left["participant"] == {"name": "hog"} and left["reason"] == "disconnect"
    assert (await bob.request("ping"))["type"] == "pong"
    await bob.close()
    log = web.log()
    assert "Traceback" not in log and "ERROR" not in log, log
    # Refused by the transport: the frame never reached the application.
    assert "sent a frame over" not in log, log


async def test_a_slow_consumer_that_reads_again_in_time_gets_its_reason(start_server) -> None:  # type: ignore[no-untyped-def]
    web = start_server("daphne", "web", env=UNLIMITED_CHAT)
    bob = await SocketClient.connected(web.ws_url, "bob")
    await bob.request("room.join", room="slow")
    hog = await non_reading_client(web.ws_url, "hog", "slow")
    await bob.event("room.joined")

    # Bob reads everything as he goes, so he hears of the hog's drop at once.
    async with asyncio.timeout(60):
        while not any(event["type"] == "room.left" for event in bob.events):
            await bob.request("room.message", room="slow", text="x" * 4096)
    left = await bob.event("room.left")
    assert left["participant"] == {"name": "hog"} and left["reason"] == "disconnect"
    # The hog reads again at once: what was queued arrives, the reason last.
    frames = []
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(10):
            while True:
                frames.append(json.loads(await hog.recv()))
    assert frames[-1] == {"type": "session.status", "status": "DISCONNECTED", "reason": "slow_consumer"}
    assert all(frame["type"] == "room.message" for frame in frames[:-1])
    assert len(frames) * 4096 > 1024 * 1024  # at least the budget was queued for it
    print(f"{len(frames)} frames queued for the slow consumer")
    await bob.close()
