"""The protocol models against the wire contract (docs/protocol.md).

Every message type the documentation names has a model; every JSON
example in it (and in the README's ``→``/``←`` exchange) is a message that
model accepts. A server example must also come out of its model exactly as
written, so the documented keys, ``null`` values and absent keys are the
ones the server sends.
"""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import pytest

from rooms import protocol, server_messages
from rooms.server_messages import (
    ChatMessage,
    ErrorReply,
    Ok,
    Pong,
    RoomMessageEvent,
    SessionStatus,
    StreamStatus,
)

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL_DOC = ROOT / "docs" / "protocol.md"
README = ROOT / "README.md"

CLIENT_MODELS: dict[str, type[protocol.ClientMessage]] = {
    typing.get_args(model.model_fields["type"].annotation)[0]: model
    for model in typing.get_args(typing.get_args(protocol.AnyClientMessage)[0])
}
SERVER_MODELS: dict[str, type[server_messages.ServerMessage]] = {
    model.model_fields["type"].default: model for model in server_messages.SERVER_MESSAGES
}

# Examples of frames the server refuses, shown in the documentation on purpose.
REFUSED_EXAMPLES = [{"type": "ping", "id": None}]

_FENCE = re.compile(r"^```(\w*)$")
_QUOTE = re.compile(r"^\s*>\s?")


def _json_blocks(text: str) -> list[tuple[int, str]]:
    """The ```json blocks of a Markdown text (also inside > quotes), with their line numbers."""
    blocks: list[tuple[int, str]] = []
    lines: list[str] | None = None
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = _QUOTE.sub("", raw)
        fence = _FENCE.match(line.strip())
        if lines is None:
            if fence and fence.group(1) == "json":
                lines, start = [], number + 1
        elif fence:
            blocks.append((start, "\n".join(lines)))
            lines = None
        else:
            lines.append(line)
    assert lines is None, "unclosed code block"
    return blocks


def _doc_examples() -> list[tuple[str, dict[str, Any]]]:
    examples = []
    for line, block in _json_blocks(PROTOCOL_DOC.read_text()):
        example = json.loads(block)
        assert isinstance(example, dict), f"protocol.md:{line} is not one JSON object"
        examples.append((f"protocol.md:{line}", example))
    return examples


def _readme_exchange() -> list[tuple[str, str, dict[str, Any]]]:
    """The README's exchange: (where, "→" from the client or "←" from the server, the frame)."""
    exchange = []
    for line, block in _json_blocks(README.read_text()):
        for offset, text in enumerate(block.splitlines()):
            arrow, _, frame = text.partition(" ")
            if arrow in ("→", "←"):
                exchange.append((f"README.md:{line + offset}", arrow, json.loads(frame)))
    return exchange


def _client_message_error(example: dict[str, Any]) -> str | None:
    """Why ``example`` is not a valid client request written with known fields only."""
    try:
        message = protocol.parse_client_message(example)
    except protocol.MessageError as error:
        return error.message
    unknown = set(example) - set(type(message).model_fields)
    # The server ignores unknown fields; the documentation must not show any.
    return f"fields the request does not have: {sorted(unknown)}" if unknown else None


def _server_message_error(example: dict[str, Any]) -> str | None:
    """Why ``example`` is not a frame the server sends."""
    model = SERVER_MODELS[example["type"]]
    try:
        frame = model.model_validate(example).frame()
    except ValueError as error:
        return str(error)
    return None if frame == example else f"the model sends {frame}"


def _example_errors(example: dict[str, Any]) -> list[str]:
    """Why ``example`` is neither a client request nor a server frame; [] when it is one of them."""
    kind = example.get("type")
    errors = []
    if kind in CLIENT_MODELS:
        if (error := _client_message_error(example)) is None:
            return []
        errors.append(f"as a request: {error}")
    if kind in SERVER_MODELS:
        if (error := _server_message_error(example)) is None:
            return []
        errors.append(f"as a server message: {error}")
    return errors or [f"no model has type {kind!r}"]


def test_every_documented_message_type_has_a_model() -> None:
    named = set(re.findall(r'"type":\s*"([a-z][\w.]*)"', PROTOCOL_DOC.read_text()))
    modelled = set(CLIENT_MODELS) | set(SERVER_MODELS)
    assert named - modelled == set(), "documented types without a model"
    assert modelled - named == set(), "models of types the documentation does not name"
    assert set(CLIENT_MODELS) == protocol.KNOWN_TYPES
    assert len(SERVER_MODELS) == len(server_messages.SERVER_MESSAGES), "two server models share a type"


def test_the_document_has_examples_of_both_directions() -> None:
    kinds = {example["type"] for _, example in _doc_examples()}
    assert {"session.connect", "room.join", "stream.publish", "stream.play"} <= kinds
    assert {"session.status", "room.state", "stream.answer", "stream.status", "room.message", "error", "ok"} <= kinds


@pytest.mark.parametrize(("where", "example"), [pytest.param(*example, id=example[0]) for example in _doc_examples()])
def test_documented_example_validates_against_its_model(where: str, example: dict[str, Any]) -> None:
    if example in REFUSED_EXAMPLES:
        with pytest.raises(protocol.MessageError):
            protocol.parse_client_message(example)
        return
    assert _example_errors(example) == [], where


def test_refused_examples_are_in_the_document() -> None:
    examples = [example for _, example in _doc_examples()]
    assert all(refused in examples for refused in REFUSED_EXAMPLES)


def test_readme_exchange_validates() -> None:
    exchange = _readme_exchange()
    assert exchange, "the README shows no exchange"
    for where, arrow, frame in exchange:
        error = _client_message_error(frame) if arrow == "→" else _server_message_error(frame)
        assert error is None, f"{where}: {error}"


# --- What the models put on the wire: null, absent ---------------------------------


def test_replies_carry_re_even_when_null() -> None:
    assert Pong(re=None).frame() == {"type": "pong", "re": None}
    assert Ok(re=None).frame() == {"type": "ok", "re": None}
    assert ErrorReply(re=None, code="bad_request", message="m").frame() == {
        "type": "error", "re": None, "code": "bad_request", "message": "m"
    }
    assert StreamStatus.refused(None, None, "limit").frame() == {
        "type": "stream.status", "re": None, "stream": None, "status": "FAILED", "info": "limit"
    }
    assert SessionStatus.failed(None, "invalid_username").frame() == {
        "type": "session.status", "re": None, "status": "FAILED", "reason": "invalid_username"
    }


def test_events_carry_no_re() -> None:
    assert StreamStatus(stream="s1", status="PLAYING").frame() == {
        "type": "stream.status", "stream": "s1", "status": "PLAYING"
    }
    assert StreamStatus.failed("s1", "ice_failed").frame() == {
        "type": "stream.status", "stream": "s1", "status": "FAILED", "info": "ice_failed"
    }
    assert SessionStatus.disconnected("resumed").frame() == {
        "type": "session.status", "status": "DISCONNECTED", "reason": "resumed"
    }
    for model in typing.get_args(server_messages.RoomEvent):
        assert "re" not in model.model_fields, model


def test_a_public_chat_message_has_to_null() -> None:
    message = ChatMessage(id="m1", sender="alice", to=None, text="hi", ts=1)
    assert RoomMessageEvent(room="r", message=message).frame() == {
        "type": "room.message", "room": "r", "message": {"id": "m1", "from": "alice", "to": None, "text": "hi", "ts": 1}
    }


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "stream.status", "stream": "s1", "status": "FAILED"},
        {"type": "stream.status", "stream": "s1", "status": "STOPPED", "info": "x"},
        {"type": "session.status", "re": "c1", "status": "ESTABLISHED", "reason": "x"},
        {"type": "session.status", "status": "FAILED", "reason": "invalid_username"},
        {"type": "session.status", "re": "c1", "status": "DISCONNECTED", "reason": "resumed"},
        {"type": "room.left", "room": "r", "participant": {"name": "a"}, "reason": "gone"},
        {"type": "ok", "re": "c1", "extra": 1},
    ],
)
def test_frames_the_server_never_sends_are_refused(frame: dict[str, Any]) -> None:
    assert _server_message_error(frame) is not None


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ({"type": "ping", "id": "i" * (protocol.MAX_ID_CODE_POINTS + 1)}, "id"),
        ({"type": "session.connect", "token": "t" * (protocol.MAX_TOKEN_CODE_POINTS + 1)}, "token"),
        ({"type": "session.connect", "username": "a", "resume": "s" * 65}, "resume"),
        ({"type": "room.kick", "room": "r", "participant": "p" * 65}, "participant"),
        ({"type": "room.message", "room": "r", "text": "t", "to": ["bob", "b" * 65]}, "to.1"),
        ({"type": "stream.play", "stream": "s" * 65, "sdp": "v=0"}, "stream"),
        ({"type": "stream.publish", "room": "r", "kind": "camera", "sdp": "v" * (64 * 1024 + 1)}, "sdp"),
        ({"type": "ping", "id": "\ud800"}, "id"),
        ({"type": "room.join", "room": "a\udfffb"}, "room"),
        ({"type": "room.message", "room": "r", "text": "t", "to": ["ok", "\ud83d"]}, "to.1"),
        ({"type": "ping", "extra": {"deep": ["\udc00"]}}, "extra.deep.0"),
        ({"type": "ping", "\ud800x": 1}, "\\ud800x"),
    ],
)
def test_string_fields_are_bounded_and_free_of_lone_surrogates(content: dict[str, Any], field: str) -> None:
    with pytest.raises(protocol.MessageError) as raised:
        protocol.parse_client_message(content)
    assert raised.value.message.startswith(f"{field}:"), raised.value.message
    # A refused id is not echoed: the reply must be sendable as UTF-8, and small.
    assert raised.value.request_id is None
    raised.value.reply().frame()


def test_fields_at_their_limits_are_accepted() -> None:
    protocol.parse_client_message({"type": "ping", "id": "i" * protocol.MAX_ID_CODE_POINTS})
    protocol.parse_client_message({"type": "room.kick", "room": "r", "participant": "p" * 64, "id": "👩" * 128})
    protocol.parse_client_message({"type": "room.message", "room": "r", "text": "\U0001f600", "to": ["b" * 64]})
