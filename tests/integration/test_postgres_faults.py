"""PostgreSQL goes away under a real daphne: rooms carry on from the live
state, and the history is repaired once the database is back.

A FaultProxy sits between the servers and PostgreSQL; cutting it resets
every database connection and refuses new ones. The test reads the rows
straight from PostgreSQL, not through the proxy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.faultproxy import FaultProxy
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

REPAIR_DEADLINE_S = 15


def participants(database: str, room: str) -> dict[str, list[tuple[Any, Any, int | None]]]:
    """The room's Participant rows by login: (joined_at, left_at, joined_seq) each."""
    with psycopg.connect(database) as connection:
        rows = connection.execute(
            "SELECT p.login, p.joined_at, p.left_at, p.joined_seq FROM rooms_participant p"
            " JOIN rooms_room r ON p.room_id = r.id WHERE r.name = %s ORDER BY p.id",
            (room,),
        ).fetchall()
    found: dict[str, list[tuple[Any, Any, int | None]]] = {}
    for login, joined_at, left_at, joined_seq in rows:
        found.setdefault(login, []).append((joined_at, left_at, joined_seq))
    return found


def chat_rows(database: str, public_id: str) -> int:
    with psycopg.connect(database) as connection:
        row = connection.execute("SELECT count(*) FROM rooms_chatmessage WHERE public_id = %s", (public_id,)).fetchone()
    assert row is not None
    return int(row[0])


async def until(condition: Callable[[], bool], timeout: float = REPAIR_DEADLINE_S) -> float:
    """Poll ``condition`` (a blocking read) until it holds; the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, f"not repaired within {timeout} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def in_room(url: str, name: str, room: str) -> SocketClient:
    client = await SocketClient.connected(url, name)
    assert (await client.request("room.join", room=room))["type"] == "room.state"
    return client


async def test_drop_chat_and_join_while_postgres_is_cut(start_server, server_env) -> None:  # type: ignore[no-untyped-def]
    database = server_env["DATABASE_URL"]
    port = int(database.rsplit(":", 1)[1].split("/")[0])
    with FaultProxy(port) as proxy:
        through_proxy = database.replace(f":{port}/", f":{proxy.port}/")
        web = start_server("daphne", "web", env={"DATABASE_URL": through_proxy})
        alice = await in_room(web.ws_url, "alice", "r")
        bob = await in_room(web.ws_url, "bob", "r")
        await alice.event("room.joined")
        carol = await SocketClient.connected(web.ws_url, "carol")
        assert set(participants(database, "r")) == {"alice", "bob"}

        assert proxy.cut() > 0  # the server held database connections, now reset

        # (a) A drop: the room hears of it at once.
        started = time.monotonic()
        await bob.close()
        left = await alice.event("room.left", timeout=5)
        room_left_s = time.monotonic() - started
        assert left["participant"]["name"] == "bob" and left["reason"] == "disconnect"

        # (b) Chat is delivered live and answered.
        started = time.monotonic()
        sent = await alice.request("room.message", room="r", text="while the database is away", timeout=5)
        message = await alice.event("room.message")
        chat_s = time.monotonic() - started
        assert sent["type"] == "ok" and sent["message"] == message["message"]["id"]
        assert message["message"]["text"] == "while the database is away"
        # (c) A join stands on the live state: the room is told, carol gets the room.
        started = time.monotonic()
        joined = await carol.request("room.join", room="r", timeout=5)
        join_s = time.monotonic() - started
        assert joined["type"] == "room.state"
        assert [p["name"] for p in joined["participants"]] == ["alice"]
        assert [m["text"] for m in joined["history"]] == ["while the database is away"]
        assert (await alice.event("room.joined"))["participant"]["name"] == "carol"
        # Nothing is in the database yet, and nothing waits on it.
        assert participants(database, "r")["bob"][0][1] is None
        assert "carol" not in participants(database, "r")
        assert chat_rows(database, message["message"]["id"]) == 0
        await asyncio.sleep(1)  # two sweeps retry against the cut database

        proxy.restore()
        started = time.monotonic()
        repaired_s = await until(
            lambda: (rows := participants(database, "r"))["bob"][0][1] is not None
            and "carol" in rows and chat_rows(database, message["message"]["id"]) == 1
        )
        rows = participants(database, "r")
        assert len(rows["bob"]) == 1 and rows["bob"][0][1] is not None
        assert len(rows["carol"]) == 1 and rows["carol"][0][1] is None
        assert rows["alice"][0][1] is None
        # The rows carry when things happened, not when they were written.
        assert rows["bob"][0][1] < rows["carol"][0][0]
        await asyncio.sleep(1.5)  # more sweeps: nothing is applied twice
        assert chat_rows(database, message["message"]["id"]) == 1
        assert {login: len(joins) for login, joins in participants(database, "r").items()} == {
            "alice": 1, "bob": 1, "carol": 1
        }
        print(f"\nroom.left after the drop: {room_left_s * 1000:.0f} ms; chat delivered {chat_s * 1000:.0f} ms,"
              f" join answered {join_s * 1000:.0f} ms; rows repaired {repaired_s * 1000:.0f} ms after restore")
        assert room_left_s < 2 and chat_s < 3 and join_s < 3

        await alice.close()
        await carol.close()
        await until(lambda: all(joins[-1][1] is not None for joins in participants(database, "r").values()))
        assert "Traceback" not in web.log()


async def test_writes_left_by_a_killed_process_are_applied_by_another(start_server, server_env) -> None:  # type: ignore[no-untyped-def]
    database = server_env["DATABASE_URL"]
    port = int(database.rsplit(":", 1)[1].split("/")[0])
    with FaultProxy(port) as proxy:
        through_proxy = database.replace(f":{port}/", f":{proxy.port}/")
        survivor = start_server("daphne", "survivor", env={"DATABASE_URL": through_proxy})
        doomed = start_server("daphne", "doomed", env={"DATABASE_URL": through_proxy})
        alice = await in_room(survivor.ws_url, "alice", "k")
        bob = await in_room(doomed.ws_url, "bob", "k")
        await alice.event("room.joined")

        proxy.cut()
        await bob.send("room.message", room="k", text="last words")
        public_id = (await alice.event("room.message"))["message"]["id"]
        await bob.close()
        assert (await alice.event("room.left", timeout=5))["participant"]["name"] == "bob"
        doomed.kill()  # its queued writes are in Redis; it may die holding the drain lock (10 s lease)
        proxy.restore()

        repaired_s = await until(
            lambda: participants(database, "k")["bob"][0][1] is not None and chat_rows(database, public_id) == 1
        )
        print(f"\nrows of the killed process repaired {repaired_s * 1000:.0f} ms after restore")
        await alice.close()
