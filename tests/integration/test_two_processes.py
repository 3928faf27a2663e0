"""Two real daphne processes sharing real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration


def room_rows(database_url: str, name: str) -> list[tuple[str, float | None]]:
    """(status, seconds since epoch of finalized_at) of each Room row named ``name``."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT status, extract(epoch FROM finalized_at) FROM rooms_room WHERE name = %s ORDER BY id", (name,)
        ).fetchall()
    return [(status, float(at) if at is not None else None) for status, at in rows]


def participant_reasons(database_url: str, room: str) -> dict[str, str]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT p.login, p.leave_reason FROM rooms_participant p JOIN rooms_room r ON r.id = p.room_id "
            "WHERE r.name = %s",
            (room,),
        ).fetchall()
    return dict(rows)


async def wait_for_status(database_url: str, name: str, status: str, timeout: float) -> list[tuple[str, float | None]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(room_rows, database_url, name)
        if rows and rows[-1][0] == status:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"room {name} never became {status}: {rows}")


@pytest.fixture
def pair(start_server):  # type: ignore[no-untyped-def]
    return start_server("daphne", "web-a"), start_server("daphne", "web-b")


async def test_join_leave_and_chat_cross_processes(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    alice = await SocketClient.connected(a.ws_url, "alice")
    bob = await SocketClient.connected(b.ws_url, "bob")
    assert (await alice.request("room.join", room="cross"))["participants"] == []
    state = await bob.request("room.join", room="cross")
    assert state["participants"] == [{"name": "alice", "streams": []}]
    assert (await alice.event("room.joined"))["participant"]["name"] == "bob"

    text = "Привет 你好 مرحبا 👩‍👩‍👧‍👦 e\u0301"
    sent = await alice.request("room.message", room="cross", text=text)
    for client in (alice, bob):
        event = await client.event("room.message")
        assert event["message"]["id"] == sent["message"]
        assert event["message"]["text"].encode() == text.encode()
    await bob.request("room.message", room="cross", text="private", to=["alice"])
    assert (await alice.event("room.message"))["message"]["to"] == ["alice"]

    assert (await bob.request("room.leave", room="cross"))["type"] == "ok"
    left = await alice.event("room.left")
    assert left["participant"] == {"name": "bob"} and left["reason"] == "leave"
    await alice.close()
    await bob.close()


async def test_same_login_race_from_both_processes_exactly_one_wins(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    one = await SocketClient.connected(a.ws_url, "racer")
    two = await SocketClient.connected(b.ws_url, "racer")
    for round_number in range(100):
        room = f"race-{round_number}"
        first, second = await asyncio.gather(
            one.request("room.join", room=room), two.request("room.join", room=room)
        )
        outcomes = sorted([first["type"], second["type"]])
        assert outcomes == ["room.failed", "room.state"], (round_number, first, second)
        loser = first if first["type"] == "room.failed" else second
        assert loser["code"] == "login_taken"
        winner = one if first["type"] == "room.state" else two
        assert (await winner.request("room.leave", room=room))["type"] == "ok"
    await one.close()
    await two.close()


async def test_leave_then_join_across_processes_never_login_taken(pair, server_env) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    on_a = await SocketClient.connected(a.ws_url, "walker")
    on_b = await SocketClient.connected(b.ws_url, "walker")
    keeper = await SocketClient.connected(a.ws_url, "keeper")
    await keeper.request("room.join", room="kept")
    for round_number in range(50):
        # Alternate between a room someone stays in and one that is
        # finalized by every leave, so the join also races finalization.
        room = "kept" if round_number % 2 else "emptied"
        leaver, joiner = (on_a, on_b) if round_number % 4 < 2 else (on_b, on_a)
        assert (await leaver.request("room.join", room=room))["type"] == "room.state"
        assert (await leaver.request("room.leave", room=room))["type"] == "ok"
        state = await joiner.request("room.join", room=room)
        assert state["type"] == "room.state", (round_number, state)
        assert (await joiner.request("room.leave", room=room))["type"] == "ok"
    rows = room_rows(server_env["DATABASE_URL"], "emptied")
    assert len(rows) == 50 and all(status == "FINALIZED" for status, _ in rows)
    for client in (on_a, on_b, keeper):
        await client.close()


async def test_sigkill_of_the_process_holding_the_last_participant_finalizes_the_room(
    pair, start_server, server_env
) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    # Three sweepers race for the room: web-b's loop, and beat through a worker.
    worker = start_server("celery", "worker", beat=True)
    worker.wait_for_log("ready.")
    alice = await SocketClient.connected(a.ws_url, "alice")
    watcher = await SocketClient.connected(b.ws_url, "watcher")
    await alice.request("room.join", room="doomed")
    await watcher.request("room.join", room="doomed")
    await alice.event("room.joined")
    assert (await watcher.request("room.leave", room="doomed"))["type"] == "ok"

    killed_at = time.time()
    a.kill()
    idle_timeout = int(server_env["ROOM_IDLE_TIMEOUT_MS"]) / 1000
    detection = int(server_env["PRESENCE_TTL_MS"]) / 1000 + int(server_env["SWEEP_INTERVAL_MS"]) / 1000
    rows = await wait_for_status(
        server_env["DATABASE_URL"], "doomed", "FINALIZED", timeout=idle_timeout + detection + 6
    )
    finalized_after = rows[-1][1] - killed_at  # type: ignore[operator]
    assert idle_timeout <= finalized_after <= idle_timeout + detection + 5, finalized_after
    assert participant_reasons(server_env["DATABASE_URL"], "doomed") == {"alice": "disconnect", "watcher": "leave"}
    assert (b.log() + worker.log()).count("room finalized: doomed") == 1
    await watcher.close()


async def test_sigkill_tells_the_others_and_a_rejoin_keeps_the_room(pair, server_env) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    alice = await SocketClient.connected(a.ws_url, "alice")
    bob = await SocketClient.connected(b.ws_url, "bob")
    await alice.request("room.join", room="survives")
    await bob.request("room.join", room="survives")
    a.kill()
    left = await bob.event("room.left", timeout=10)
    assert left == {"type": "room.left", "room": "survives", "participant": {"name": "alice"}, "reason": "disconnect"}
    # Alice comes back through the other process under the same login.
    again = await SocketClient.connected(b.ws_url, "alice")
    state = await again.request("room.join", room="survives")
    assert state["participants"] == [{"name": "bob", "streams": []}]
    await bob.close()
    await again.close()
    rows = await wait_for_status(server_env["DATABASE_URL"], "survives", "FINALIZED", timeout=10)
    assert len(rows) == 1


async def test_celery_beat_finalizes_rooms_when_no_web_process_is_left(start_server, server_env) -> None:  # type: ignore[no-untyped-def]
    web = start_server("daphne", "web-only")
    worker = start_server("celery", "worker", beat=True)
    worker.wait_for_log("ready.")
    alice = await SocketClient.connected(web.ws_url, "alice")
    await alice.request("room.join", room="orphan")
    web.kill()
    rows = await wait_for_status(server_env["DATABASE_URL"], "orphan", "FINALIZED", timeout=15)
    assert len(rows) == 1
    assert worker.log().count("room finalized: orphan") == 1


async def test_a_quiet_connection_stays_open(pair) -> None:  # type: ignore[no-untyped-def]
    """A consumer with nothing to receive waits on Redis longer than a socket timeout."""
    a, b = pair
    quiet = await SocketClient.connected(a.ws_url, "quiet")
    talker = await SocketClient.connected(b.ws_url, "talker")
    await quiet.request("room.join", room="calm")
    await talker.request("room.join", room="calm")
    await quiet.event("room.joined")
    await asyncio.sleep(12)  # the quiet time is what is tested: two channel-layer read timeouts
    await talker.request("room.message", room="calm", text="still there?")
    assert (await quiet.event("room.message"))["message"]["text"] == "still there?"
    assert "Timeout reading" not in a.log() + b.log()
    await quiet.close()
    await talker.close()
