"""rooms.consumer_loop: a consumer's messages from every source, handled one at a time."""

from __future__ import annotations

import asyncio

import pytest
from channels.exceptions import StopConsumer

from rooms.consumer_loop import handle_each


async def test_a_message_waits_while_another_of_the_same_consumer_is_being_handled() -> None:
    client: asyncio.Queue[str] = asyncio.Queue()
    layer: asyncio.Queue[str] = asyncio.Queue()
    handled: list[str] = []
    join_may_end = asyncio.Event()
    join_started = asyncio.Event()

    async def handle(message: str) -> None:
        handled.append(f"start {message}")
        if message == "join":
            join_started.set()
            await join_may_end.wait()
        if message == "leave":
            raise StopConsumer
        handled.append(f"end {message}")

    loop = asyncio.ensure_future(handle_each([client.get, layer.get], handle))
    await client.put("join")
    await join_started.wait()
    await layer.put("event")
    # Let the event's source take it: it must wait for the join.
    for _ in range(5):
        await asyncio.sleep(0)
    assert handled == ["start join"]
    join_may_end.set()
    await client.put("leave")
    with pytest.raises(StopConsumer):  # the consumer's end, raised to its caller
        await asyncio.wait_for(loop, 5)
    assert handled == ["start join", "end join", "start event", "end event", "start leave"]


async def test_ends_with_the_handling_error_and_stops_every_source() -> None:
    client: asyncio.Queue[str] = asyncio.Queue()
    taken_after_end: list[str] = []

    async def layer_receive() -> str:
        message = await asyncio.sleep(3600, "never")
        taken_after_end.append(message)
        return message

    async def handle(message: str) -> None:
        raise ValueError(message)

    loop = asyncio.ensure_future(handle_each([client.get, layer_receive], handle))
    await client.put("bad frame")
    with pytest.raises(ValueError, match="bad frame"):
        await asyncio.wait_for(loop, 5)
    assert taken_after_end == []


async def test_cancelled_it_cancels_its_sources() -> None:
    waiting = asyncio.Event()
    cancelled = asyncio.Event()

    async def receive() -> str:
        waiting.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return ""

    async def handle(message: str) -> None:
        raise AssertionError("no message was sent")

    loop = asyncio.ensure_future(handle_each([receive], handle))
    await waiting.wait()
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert cancelled.is_set()
