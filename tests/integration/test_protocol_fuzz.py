"""Stateful fuzzing of the room protocol across two real daphne processes.

Hypothesis drives several clients, spread over two web processes sharing
Redis and PostgreSQL, through random sequences of valid requests (join,
leave, public and private chat, ping, a second connect, drops) and invalid
ones (not JSON, not an object, unknown types, wrongly typed or missing
fields, oversize fields, lone surrogates, null). A model of the rooms
predicts every answer. Invariants:

- every request is answered, with ``re`` its id (``null`` when the frame has
  no valid id), and refusals carry a documented code;
- a join's ``room.state`` lists exactly the other live members, and every
  client's view (``room.state`` plus ``room.joined``/``room.left``) ends up
  equal to the model's membership;
- every chat message reaches each recipient exactly once, unchanged, and
  nobody else;
- once every client has gone, no ghost stays: a fresh join sees an empty
  room, and after the idle window every room row is finalized with nobody
  left in it.

``FUZZ_EXAMPLES`` (default 20) sets the number of random programs;
the run is derandomized and keeps no example database, so CI is stable.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from tests.fuzz_client import FuzzClient

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
STEPS = int(os.environ.get("FUZZ_STEPS", "30"))
NAMES = ["ann", "bob", "cy"]  # fewer names than clients, so logins collide
ROOMS = 3
MAX_CLIENTS = 4
ROOM_PREFIX = "fz"
# Codes the protocol documents (docs/protocol.md, Errors).
ERROR_CODES = {
    "bad_request", "not_connected", "already_connected", "not_in_room", "unknown_participant", "rate_limited",
    "unknown_stream", "forbidden", "unknown_room", "token_invalid", "token_expired", "token_not_yet_valid",
}
KNOWN_TYPES = {
    "session.connect": ["username"],
    "room.join": ["room", "record"],
    "room.leave": ["room"],
    "room.message": ["room", "text", "to"],
    "stream.publish": ["room", "kind", "sdp", "record"],
    "stream.play": ["stream", "sdp"],
    "stream.stop": ["stream"],
    "stream.unpublish": ["stream"],
    "stream.mute": ["stream", "audio", "video"],
}
T = TypeVar("T")

chat_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=40)
# A JSON value of the wrong type for every field above: none of the fields
# takes a number, a list of numbers, an object or null, and only
# record/audio/video take booleans (excluded for those below).
wrong_value = st.one_of(
    st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.none(),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.booleans(),
)


def invalid_frames(request_id: str) -> st.SearchStrategy[tuple[str, str | None]]:
    """(frame text, expected ``re``) of frames the server must refuse with ``bad_request``."""
    not_json = st.text(max_size=30).map(lambda text: "\x00{" + text)
    non_object = st.one_of(st.integers(), st.text(max_size=10), st.lists(st.booleans(), max_size=3), st.none()).map(
        json.dumps
    )
    unknown_type = st.text(max_size=20).filter(lambda kind: kind not in KNOWN_TYPES and kind != "ping").map(
        lambda kind: json.dumps({"type": kind, "id": request_id})
    )
    missing_type = st.just(json.dumps({"id": request_id, "room": "x"}))

    @st.composite
    def wrong_field(draw: st.DrawFn) -> str:
        kind = draw(st.sampled_from(sorted(KNOWN_TYPES)))
        field = draw(st.sampled_from(KNOWN_TYPES[kind]))
        value = draw(wrong_value.filter(lambda v: not (isinstance(v, bool) and field in {"record", "audio", "video"})))
        return json.dumps({"type": kind, "id": request_id, "room": f"{ROOM_PREFIX}-x", field: value})

    oversize_text = st.integers(4097, 6000).map(
        lambda n: json.dumps({"type": "room.message", "id": request_id, "room": "r", "text": "é" * n})
    )
    empty_to = st.just(json.dumps({"type": "room.message", "id": request_id, "room": "r", "text": "t", "to": []}))
    nul_text = st.just(json.dumps({"type": "room.message", "id": request_id, "room": "r", "text": "a\x00b"}))
    lone_surrogate = st.sampled_from(["text", "room", "x"]).map(
        lambda key: '{"type": "room.message", "id": "' + request_id + '", "room": "r", "text": "t", "'
        + key + '": "a\\ud800"}'
    )
    with_id = st.one_of(unknown_type, missing_type, wrong_field(), oversize_text, empty_to, nul_text, lone_surrogate)
    without_id = st.one_of(
        not_json,
        non_object,
        st.just('{"type": "ping", "id": "x", "n": NaN}'),
        st.just('{"type": "ping", "id": null}'),
        st.integers(129, 1000).map(lambda n: json.dumps({"type": "ping", "id": "i" * n})),
        st.just('{"type": "ping", "id": "\\udc00"}'),
        st.just('{"type": "ping", "id": 7}'),
    )
    return st.one_of(with_id.map(lambda text: (text, request_id)), without_id.map(lambda text: (text, None)))


def check_refusal(reply: dict[str, Any], expected_re: str | None) -> None:
    assert reply["re"] == expected_re, reply
    assert reply["type"] == "error" and reply["code"] == "bad_request", reply


def make_machine(loop: asyncio.AbstractEventLoop, urls: list[str], rooms_used: set[str]) -> type:
    ids = itertools.count(1)

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return loop.run_until_complete(coroutine)

    class ProtocolMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            prefix = f"{ROOM_PREFIX}-{uuid.uuid4().hex[:8]}"
            self.rooms = [f"{prefix}-{n}" for n in range(ROOMS)]
            rooms_used.update(self.rooms)
            self.clients: list[FuzzClient] = []
            self.members: dict[str, dict[str, FuzzClient]] = {room: {} for room in self.rooms}
            # message id -> (text, clients that must get it once)
            self.sent: dict[str, tuple[str, list[FuzzClient]]] = {}
            self.labels = itertools.count(1)
            self.dropped: set[tuple[str, str]] = set()  # (room, login) of drops, applied by the server soon after

        def request_id(self) -> str:
            return f"f{next(ids)}"

        def open_client(self, server: int, name: str) -> FuzzClient:
            label = f"{name}#{next(self.labels)}@{'ab'[server]}"
            client = run(FuzzClient.open(urls[server], name, label))
            reply = run(client.request(self.request_id(), "session.connect", username=name))
            assert reply["status"] == "ESTABLISHED" and reply["identity"] == name, reply
            self.clients.append(client)
            return client

        def rooms_of(self, client: FuzzClient) -> list[str]:
            return [room for room, members in self.members.items() if members.get(client.name) is client]

        @initialize(name_a=st.sampled_from(NAMES), name_b=st.sampled_from(NAMES))
        def two_clients(self, name_a: str, name_b: str) -> None:
            self.open_client(0, name_a)
            self.open_client(1, name_b)

        @precondition(lambda self: len(self.clients) < MAX_CLIENTS)
        @rule(server=st.integers(0, 1), name=st.sampled_from(NAMES))
        def connect(self, server: int, name: str) -> None:
            self.open_client(server, name)

        @rule(data=st.data(), room=st.integers(0, ROOMS - 1))
        def join(self, data: st.DataObject, room: int) -> None:
            client = data.draw(st.sampled_from(self.clients))
            name = self.rooms[room]
            members = self.members[name]
            reply = run(self.join_after_drops(client, name))
            holder = members.get(client.name)
            if holder is not None and holder is not client:
                assert reply["type"] == "room.failed" and reply["code"] == "login_taken", reply
                return
            assert reply["type"] == "room.state", (client.label, reply)
            others = sorted(other for other in members if other != client.name)
            assert sorted(p["name"] for p in reply["participants"]) == others, (client.label, reply, others)
            members[client.name] = client

        async def join_after_drops(self, client: FuzzClient, room: str) -> dict[str, Any]:
            """Join; while the answer still shows a login that dropped from the room, join again.

            A client's close completes before the server has ended its
            session (the consumer's disconnect runs after the close
            handshake), so a join right after a drop may still see it:
            ``login_taken`` or the dropped name listed. Anything else is
            answered at once.
            """
            others = {name for name in self.members[room] if name != client.name}
            deadline = time.monotonic() + 5
            while True:
                reply = await client.request(self.request_id(), "room.join", room=room)
                if reply["type"] == "room.state":
                    lingering = {p["name"] for p in reply["participants"]} - others
                elif reply.get("code") == "login_taken" and client.name not in self.members[room]:
                    lingering = {client.name}
                else:
                    lingering = set()
                if not lingering <= {name for dropped_room, name in self.dropped if dropped_room == room}:
                    return reply  # a true ghost: the assertions report it
                if not lingering or time.monotonic() > deadline:
                    return reply
                if reply["type"] == "room.state" and client.name not in self.members[room]:
                    assert (await client.request(self.request_id(), "room.leave", room=room))["type"] == "ok"
                    client.forget(room)
                await asyncio.sleep(0.1)

        @rule(data=st.data(), room=st.integers(0, ROOMS - 1))
        def leave(self, data: st.DataObject, room: int) -> None:
            client = data.draw(st.sampled_from(self.clients))
            name = self.rooms[room]
            reply = run(client.request(self.request_id(), "room.leave", room=name))
            if self.members[name].get(client.name) is client:
                assert reply["type"] == "ok", (client.label, reply)
                del self.members[name][client.name]
                client.forget(name)
            else:
                assert reply["type"] == "error" and reply["code"] == "not_in_room", (client.label, reply)

        @rule(data=st.data(), room=st.integers(0, ROOMS - 1), text=chat_text)
        def chat(self, data: st.DataObject, room: int, text: str) -> None:
            client = data.draw(st.sampled_from(self.clients))
            name = self.rooms[room]
            members = self.members[name]
            reply = run(client.request(self.request_id(), "room.message", room=name, text=text))
            if members.get(client.name) is not client:
                assert reply["type"] == "error" and reply["code"] == "not_in_room", (client.label, reply)
                return
            assert reply["type"] == "ok" and isinstance(reply["message"], str), (client.label, reply)
            self.sent[reply["message"]] = (text, list(members.values()))

        @rule(data=st.data(), room=st.integers(0, ROOMS - 1), text=chat_text)
        def private_chat(self, data: st.DataObject, room: int, text: str) -> None:
            client = data.draw(st.sampled_from(self.clients))
            others = [name for name in NAMES if name != client.name]
            to = data.draw(st.lists(st.sampled_from(others), min_size=1, max_size=3))
            name = self.rooms[room]
            members = self.members[name]
            reply = run(client.request(self.request_id(), "room.message", room=name, text=text, to=to))
            if members.get(client.name) is not client:
                assert reply["type"] == "error" and reply["code"] == "not_in_room", (client.label, reply)
                return
            recipients = [members[login] for login in dict.fromkeys(to) if login in members]
            if not recipients:
                assert reply["type"] == "error" and reply["code"] == "unknown_participant", (client.label, reply)
                return
            assert reply["type"] == "ok", (client.label, reply)
            self.sent[reply["message"]] = (text, [client, *recipients])

        @rule(data=st.data())
        def ping(self, data: st.DataObject) -> None:
            client = data.draw(st.sampled_from(self.clients))
            assert run(client.request(self.request_id(), "ping"))["type"] == "pong"

        @rule(data=st.data(), name=st.sampled_from(NAMES))
        def connect_again(self, data: st.DataObject, name: str) -> None:
            client = data.draw(st.sampled_from(self.clients))
            reply = run(client.request(self.request_id(), "session.connect", username=name))
            assert reply["type"] == "error" and reply["code"] == "already_connected", reply

        @rule(data=st.data())
        def invalid(self, data: st.DataObject) -> None:
            client = data.draw(st.sampled_from(self.clients))
            text, expected_re = data.draw(invalid_frames(self.request_id()))
            run(client.send_raw(text))
            reply = run(client.reply(expected_re))
            check_refusal(reply, expected_re)

        @precondition(lambda self: len(self.clients) > 1)
        @rule(data=st.data())
        def drop(self, data: st.DataObject) -> None:
            client = data.draw(st.sampled_from(self.clients))
            run(client.close())
            self.clients.remove(client)
            for room in self.rooms_of(client):
                del self.members[room][client.name]
                self.dropped.add((room, client.name))
            # A dropped client owes nothing more; its receipts are already counted.

        def teardown(self) -> None:
            try:
                run(self.check_views_and_chat())
            finally:
                for client in self.clients:
                    run(client.close())
            run(self.check_no_ghost())

        async def check_views_and_chat(self) -> None:
            for client in self.clients:
                expected = {room: {n for n in self.members[room] if n != client.name} for room in self.rooms_of(client)}

                def settled(client: FuzzClient = client, expected: dict[str, set[str]] = expected) -> bool:
                    return client.view == expected

                await client.wait_until(settled, timeout=5)
                assert client.view == expected, (client.label, client.view, expected)
            for message_id, (_text, recipients) in self.sent.items():
                for client in recipients:
                    if client.closed:
                        continue

                    def received(client: FuzzClient = client, message_id: str = message_id) -> bool:
                        return client.chat[message_id] >= 1

                    await client.wait_until(received, timeout=5)
            await asyncio.sleep(0.2)  # a duplicate would come right behind the original
            for message_id, (text, recipients) in self.sent.items():
                for client in self.clients:
                    expected_count = 1 if any(client is r for r in recipients) else 0
                    assert client.chat[message_id] == expected_count, (client.label, message_id, recipients)
                    for frame in client.frames:
                        if frame.get("type") == "room.message" and frame["message"]["id"] == message_id:
                            assert frame["message"]["text"] == text

        async def check_no_ghost(self) -> None:
            checker = await FuzzClient.open(urls[1], "checker", "checker")
            await checker.request(self.request_id(), "session.connect", username="checker")
            deadline = time.monotonic() + 5
            for room in self.rooms:
                while True:
                    state = await checker.request(self.request_id(), "room.join", room=room)
                    assert state["type"] == "room.state", state
                    await checker.request(self.request_id(), "room.leave", room=room)
                    if not state["participants"] or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.1)
                assert state["participants"] == [], (room, state)
            await checker.close()

    return ProtocolMachine


def open_room_rows(database_url: str, names: set[str]) -> list[tuple[str, str, int]]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT r.name, r.status, count(p.id) FILTER (WHERE p.left_at IS NULL) FROM rooms_room r "
            "LEFT JOIN rooms_participant p ON p.room_id = r.id WHERE r.name = ANY(%s) GROUP BY r.id "
            "HAVING r.status <> 'FINALIZED' OR count(p.id) FILTER (WHERE p.left_at IS NULL) > 0",
            (sorted(names),),
        ).fetchall()
    return rows


def test_random_request_sequences_keep_the_protocol_invariants(start_server, server_env) -> None:  # type: ignore[no-untyped-def]
    servers = [start_server("daphne", "web-a"), start_server("daphne", "web-b")]
    rooms_used: set[str] = set()
    loop = asyncio.new_event_loop()
    try:
        machine = make_machine(loop, [server.ws_url for server in servers], rooms_used)
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        loop.close()
    for server in servers:
        assert "Traceback" not in server.log(), server.log()[-3000:]
    # No ghost after the idle window: every room of the run ends finalized
    # with every participant row closed.
    window = (int(server_env["ROOM_IDLE_TIMEOUT_MS"]) + int(server_env["PRESENCE_TTL_MS"])) / 1000 + 6
    deadline = time.monotonic() + window
    while (rows := open_room_rows(server_env["DATABASE_URL"], rooms_used)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rows == []
