"""Protocol v1, client to server: the typed shape of every request (see
docs/protocol.md; replies and events are in ``rooms.server_messages``).

Client messages are parsed strictly: a field of the wrong JSON type is
``bad_request``. Rules about *content* that the protocol answers with a
domain code (``invalid_username``, ``invalid_room``) are not enforced here
but by the validators below, so a service can answer them its own way.
"""

from __future__ import annotations

import re
import typing
import unicodedata
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from rooms.server_messages import ErrorReply, StreamKind
from rooms.validation import validation_problems

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024
MAX_TEXT_CODE_POINTS = 4096
MAX_USERNAME_CODE_POINTS = 64
# Every string a client sends has a length limit, so nothing echoed back
# (an id in ``re``) or kept (a recipient list) is larger than it must be.
MAX_ID_CODE_POINTS = 128
MAX_NAME_CODE_POINTS = 64  # a participant named in room.kick or to
MAX_STREAM_ID_CODE_POINTS = 64  # stream ids and session ids (resume)
MAX_TOKEN_CODE_POINTS = 8192

# Not starting with '.' (hidden files) or '-' (an option, when a room name
# reaches a command line such as the record hook's).
ROOM_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_USERNAME_EXTRA = frozenset(" -_.@")


def username_normalized(raw: str) -> str | None:
    """The username trimmed and NFC-normalised (so that "é" typed as one
    code point or as e + accent is one login), or None if invalid."""
    name = unicodedata.normalize("NFC", raw.strip())
    if not 1 <= len(name) <= MAX_USERNAME_CODE_POINTS:
        return None
    for char in name:
        if char in _USERNAME_EXTRA:
            continue
        if unicodedata.category(char)[0] not in "LMN":
            return None
    return name


def room_name_valid(name: str) -> bool:
    return ROOM_NAME_RE.fullmatch(name) is not None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(text: str) -> bool:
    # JSON may carry lone surrogates ("\ud800"); they cannot be sent on as
    # UTF-8, so they are refused at the edge rather than failing later (a
    # pair is decoded into one code point, so any surrogate left is lone).
    return _SURROGATE.search(text) is not None


def _surrogate_field(content: object, path: str = "") -> str | None:
    """The dotted path of the first key or string in ``content`` holding a lone surrogate."""
    if isinstance(content, str):
        return path if _has_surrogate(content) else None
    if isinstance(content, dict):
        for key, value in content.items():
            if _has_surrogate(key):
                return f"{path}.{_printable(key)}" if path else _printable(key)
            found = _surrogate_field(value, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(content, list):
        for index, item in enumerate(content):
            found = _surrogate_field(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode()


Id = Annotated[StrictStr, Field(max_length=MAX_ID_CODE_POINTS)]
Name = Annotated[StrictStr, Field(max_length=MAX_NAME_CODE_POINTS)]
StreamId = Annotated[StrictStr, Field(max_length=MAX_STREAM_ID_CODE_POINTS)]
Token = Annotated[StrictStr, Field(max_length=MAX_TOKEN_CODE_POINTS)]
Sdp = Annotated[StrictStr, Field(max_length=MAX_FRAME_BYTES)]


class ClientMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: Id | None = None


class SessionConnect(ClientMessage):
    type: Literal["session.connect"]
    # Required without a token; with one, the token's identity is the login.
    username: StrictStr | None = None
    token: Token | None = None
    resume: StreamId | None = None


class SessionRefresh(ClientMessage):
    type: Literal["session.refresh"]
    token: Token


class Ping(ClientMessage):
    type: Literal["ping"]


class RoomJoin(ClientMessage):
    type: Literal["room.join"]
    room: StrictStr
    record: StrictBool = False


class RoomLeave(ClientMessage):
    type: Literal["room.leave"]
    room: StrictStr


class RoomMessage(ClientMessage):
    type: Literal["room.message"]
    room: StrictStr
    text: StrictStr
    to: list[Name] | None = None

    @field_validator("text")
    @classmethod
    def _text_in_limits(cls, text: str) -> str:
        if not 1 <= len(text) <= MAX_TEXT_CODE_POINTS:
            raise ValueError(f"text must be 1-{MAX_TEXT_CODE_POINTS} code points")
        if "\x00" in text:
            raise ValueError("text must not contain NUL")
        if _has_surrogate(text):
            raise ValueError("text must not contain lone surrogates")
        return text

    @field_validator("to")
    @classmethod
    def _to_not_empty(cls, to: list[str] | None) -> list[str] | None:
        if to is not None and not to:
            raise ValueError("to must name at least one participant; omit it for a public message")
        return to


class RoomKick(ClientMessage):
    type: Literal["room.kick"]
    room: StrictStr
    participant: Name


class RoomEnd(ClientMessage):
    type: Literal["room.end"]
    room: StrictStr


class RoomLock(ClientMessage):
    type: Literal["room.lock"]
    room: StrictStr
    locked: StrictBool


class StreamPublish(ClientMessage):
    type: Literal["stream.publish"]
    room: StrictStr
    kind: StreamKind
    sdp: Sdp
    record: StrictBool = False


class StreamUnpublish(ClientMessage):
    type: Literal["stream.unpublish"]
    stream: StreamId


class StreamPlay(ClientMessage):
    type: Literal["stream.play"]
    stream: StreamId
    sdp: Sdp


class StreamStop(ClientMessage):
    type: Literal["stream.stop"]
    stream: StreamId


class StreamMute(ClientMessage):
    type: Literal["stream.mute"]
    stream: StreamId
    audio: StrictBool | None = None
    video: StrictBool | None = None


AnyClientMessage = Annotated[
    SessionConnect
    | SessionRefresh
    | Ping
    | RoomJoin
    | RoomLeave
    | RoomMessage
    | RoomKick
    | RoomEnd
    | RoomLock
    | StreamPublish
    | StreamUnpublish
    | StreamPlay
    | StreamStop
    | StreamMute,
    Field(discriminator="type"),
]
_client_message_adapter: TypeAdapter[AnyClientMessage] = TypeAdapter(AnyClientMessage)
KNOWN_TYPES = frozenset(
    model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
    for model in typing.get_args(typing.get_args(AnyClientMessage)[0])
)


# Optional fields are either absent or of their type; JSON null is neither.
_NOT_NULLABLE = frozenset({"id", "username", "token", "resume", "room", "record", "text", "to", "kind", "sdp",
                           "stream", "audio", "video", "participant", "locked"})


class MessageError(Exception):
    """A frame that is not a valid v1 client message."""

    def __init__(self, message: str, request_id: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id

    def reply(self) -> ErrorReply:
        return ErrorReply(re=self.request_id, code="bad_request", message=self.message)


def request_id_of(content: object) -> str | None:
    """The frame's ``id`` to echo in ``re``: only one that is itself valid."""
    if isinstance(content, dict):
        value = content.get("id")
        if isinstance(value, str) and len(value) <= MAX_ID_CODE_POINTS and not _has_surrogate(value):
            return value
    return None


def parse_client_message(content: object) -> AnyClientMessage:
    """Validate a decoded JSON value as a client message, or raise MessageError."""
    request_id = request_id_of(content)
    if not isinstance(content, dict):
        raise MessageError("a frame must be a JSON object", request_id)
    kind = content.get("type")
    if not isinstance(kind, str):
        raise MessageError("'type' must be a string", request_id)
    surrogate = _surrogate_field(content)
    if surrogate is not None:
        raise MessageError(f"{surrogate}: must not contain lone surrogates", request_id)
    if kind not in KNOWN_TYPES:
        raise MessageError(f"unknown type {kind!r}", request_id)
    nulls = sorted(key for key, value in content.items() if value is None and key in _NOT_NULLABLE)
    if nulls:
        raise MessageError(f"{', '.join(nulls)}: omit the field instead of sending null", request_id)
    try:
        return _client_message_adapter.validate_python(content)
    except ValidationError as error:
        # The first part of each location is the message type (the union's tag).
        raise MessageError(validation_problems(error, whole="frame", skip=1), request_id) from None
