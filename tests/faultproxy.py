"""A TCP proxy that injects real network faults (the technique of Toxiproxy).

Put it between a server process and Redis or PostgreSQL: the server talks
to ``proxy.port`` on 127.0.0.1, the proxy forwards to the real service.
A test then cuts connections (the peer sees a reset), refuses new ones, or
blackholes traffic (connections stay open, bytes go nowhere: what a
partition looks like), and restores the link. Nothing is mocked: the
server's client library meets a real broken TCP connection.

The proxy runs its own asyncio loop in a daemon thread, so synchronous and
asynchronous tests use it alike::

    with FaultProxy(6379) as proxy:
        env["REDIS_URL"] = f"redis://127.0.0.1:{proxy.port}/0"
        ...
        proxy.cut()        # reset every open connection, refuse new ones
        proxy.restore()    # accept and forward again
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

MODES = ("forward", "refuse", "blackhole")


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.mode = "forward"
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------

    def cut(self) -> int:
        """Reset every open connection and refuse new ones until ``restore``. Returns how many were cut."""
        return self._call(self._set_mode, "refuse", True)

    def reset_connections(self) -> int:
        """Reset every open connection; new ones are forwarded (a blip)."""
        return self._call(self._set_mode, "forward", True)

    def blackhole(self) -> int:
        """Keep connections open but forward nothing either way; new connections hang too."""
        return self._call(self._set_mode, "blackhole", False)

    def restore(self) -> None:
        """Forward again. After a blackhole the open connections are reset:
        their streams lost bytes, as after a real partition."""
        self._call(self._set_mode, "forward", self.mode == "blackhole")

    @property
    def open_connections(self) -> int:
        return self._call(lambda: _ready(len(self._links)))

    # -- inside the loop ---------------------------------------------------

    def _call(self, function: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        return asyncio.run_coroutine_threadsafe(function(*args), self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        await self._set_mode("refuse", True)
        if self._server is not None:
            self._server.close()
        # Links being torn down end here, not as "destroyed but pending" tasks.
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _set_mode(self, mode: str, reset: bool) -> int:
        assert mode in MODES
        self.mode = mode
        if not reset:
            return 0
        links = list(self._links)
        for client, upstream in links:
            _reset(client)
            _reset(upstream)
        self._links.clear()
        return len(links)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "refuse":
            _reset(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(client_writer)
            return
        link = (client_writer, upstream_writer)
        self._links.add(link)
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer),
            return_exceptions=True,
        )
        self._links.discard(link)
        for writer in link:
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.close()
                return
            if self.mode == "blackhole":
                continue
            writer.write(data)
            await writer.drain()


async def _ready(value: T) -> T:
    return value


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a middlebox would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
