"""Protocol v1, server to client: one model per reply and event type.

Services build these and return them; the WebSocket edge (or, for events,
``rooms.events``) turns a message into its frame with ``frame()``, the one
place where a server message is serialized. The keys are those of
docs/protocol.md: a field that is sometimes left out of a frame (``re`` of
an event, ``info`` of a status that is not ``FAILED``) defaults to
``MISSING`` and is then absent, while ``None`` is sent as ``null`` (``re``
of a request sent without ``id``, ``to`` of a public chat message).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import MISSING, BaseModel, ConfigDict, Field, JsonValue, model_validator

StreamKind = Literal["camera", "screen"]


class WireObject(BaseModel):
    # extra="forbid": a key the server does not send is an error, so the
    # protocol test catches documentation that promises one.
    model_config = ConfigDict(frozen=True, extra="forbid", serialize_by_alias=True, validate_by_name=True)


# --- Shapes shared by several messages -----------------------------------------


class Muted(WireObject):
    audio: bool
    video: bool


NOT_MUTED = Muted(audio=False, video=False)


class Stream(WireObject):
    """A published stream as clients see it."""

    id: str
    participant: str
    kind: StreamKind
    audio: bool
    video: bool
    muted: Muted = NOT_MUTED


class StreamRef(WireObject):
    """A stream that ended: ``room.unpublished`` names only whose it was."""

    id: str
    participant: str


class Participant(WireObject):
    name: str
    # From the access token: absent when the token had none (or no token).
    display_name: str | MISSING = MISSING
    metadata: str | MISSING = MISSING
    streams: list[Stream] = Field(default_factory=list)


class ParticipantRef(WireObject):
    """A participant that left: only its name."""

    name: str


class ChatMessage(WireObject):
    id: str
    sender: str = Field(validation_alias="from", serialization_alias="from")
    to: list[str] | None  # None: public, sent as null
    text: str
    ts: int


class ServerMessage(WireObject):
    def frame(self) -> dict[str, Any]:
        """The JSON object this message is on the wire (before text encoding)."""
        return self.model_dump(mode="json")


# --- Replies (``re`` always present, null for a request without ``id``) ---------


class Ok(ServerMessage):
    type: Literal["ok"] = "ok"
    re: str | None
    message: str | MISSING = MISSING  # the new chat message's id, in reply to room.message


class ErrorReply(ServerMessage):
    type: Literal["error"] = "error"
    re: str | None
    code: str
    message: str


class Pong(ServerMessage):
    type: Literal["pong"] = "pong"
    re: str | None


class RoomState(ServerMessage):
    type: Literal["room.state"] = "room.state"
    re: str | None
    room: str
    record: bool
    video_codec: str
    # Absent when no installed app keeps records.
    records_url: str | MISSING = MISSING
    # Locked by a moderator: nobody else can join.
    locked: bool = False
    # Who started the room's recording: a joiner is told before any media
    # flows that it is recorded. Absent when the room does not record.
    recorded_by: str | MISSING = MISSING
    participants: list[Participant]
    history: list[ChatMessage]


class RoomFailed(ServerMessage):
    type: Literal["room.failed"] = "room.failed"
    re: str | None
    room: str
    code: str
    message: str


class StreamAnswer(ServerMessage):
    type: Literal["stream.answer"] = "stream.answer"
    re: str | None
    stream: Stream
    sdp: str


# --- Replies that also come as events ------------------------------------------------


class SessionStatus(ServerMessage):
    type: Literal["session.status"] = "session.status"
    re: str | MISSING | None = MISSING
    status: Literal["ESTABLISHED", "FAILED", "DISCONNECTED"]
    session: str | MISSING = MISSING
    protocol: int | MISSING = MISSING
    # ICE_SERVERS (its credentials only with a token) and TURN credentials
    # of this session's own (rooms.turn).
    ice_servers: list[dict[str, JsonValue]] | MISSING = MISSING
    # When the TURN credentials in ice_servers expire (ms since the epoch);
    # absent when none do. session.ice_servers brings fresh ones before then.
    ice_servers_expires: int | MISSING = MISSING
    # The login of this session (ESTABLISHED).
    identity: str | MISSING = MISSING
    # With an access token (ESTABLISHED): its ``video`` grants as the token
    # carries them, and when it expires (ms since the epoch).
    grants: dict[str, JsonValue] | MISSING = MISSING
    expires: int | MISSING = MISSING
    reason: str | MISSING = MISSING
    # Why a token was refused, in words (FAILED).
    message: str | MISSING = MISSING

    @model_validator(mode="after")
    def _fields_of_status(self) -> SessionStatus:
        established = self.status == "ESTABLISHED"
        established_fields = (self.session, self.protocol, self.ice_servers, self.identity)
        if any((field is MISSING) == established for field in established_fields):
            raise ValueError("session, protocol, ice_servers and identity come with ESTABLISHED only")
        if not established and any(
            field is not MISSING for field in (self.grants, self.expires, self.ice_servers_expires)
        ):
            raise ValueError("grants, expires and ice_servers_expires come with ESTABLISHED only")
        if (self.reason is MISSING) != established:
            raise ValueError("reason comes with FAILED and DISCONNECTED only")
        if self.message is not MISSING and self.status != "FAILED":
            raise ValueError("message comes with FAILED only")
        if (self.re is MISSING) != (self.status == "DISCONNECTED"):
            raise ValueError("DISCONNECTED is an event (no re); ESTABLISHED and FAILED are replies")
        return self

    @classmethod
    def established(
        cls,
        re: str | None,
        *,
        session: str,
        protocol: int,
        ice_servers: list[dict[str, JsonValue]],
        identity: str,
        grants: dict[str, JsonValue] | MISSING = MISSING,
        expires: int | MISSING = MISSING,
        ice_servers_expires: int | MISSING = MISSING,
    ) -> SessionStatus:
        return cls(
            re=re, status="ESTABLISHED", session=session, protocol=protocol, ice_servers=ice_servers,
            ice_servers_expires=ice_servers_expires, identity=identity, grants=grants, expires=expires,
        )

    @classmethod
    def failed(cls, re: str | None, reason: str, message: str | MISSING = MISSING) -> SessionStatus:
        return cls(re=re, status="FAILED", reason=reason, message=message)

    @classmethod
    def disconnected(cls, reason: str) -> SessionStatus:
        """The server ends the session; the socket closes next."""
        return cls(status="DISCONNECTED", reason=reason)


class SessionIceServers(ServerMessage):
    """Fresh TURN credentials, sent before the session's current ones expire."""

    type: Literal["session.ice_servers"] = "session.ice_servers"
    ice_servers: list[dict[str, JsonValue]]
    # When these expire (ms since the epoch).
    expires: int


class StreamStatus(ServerMessage):
    type: Literal["stream.status"] = "stream.status"
    re: str | MISSING | None = MISSING
    stream: str | None
    status: Literal["PUBLISHING", "PLAYING", "STOPPED", "UNPUBLISHED", "FAILED"]
    info: str | MISSING = MISSING

    @model_validator(mode="after")
    def _info_with_failed(self) -> StreamStatus:
        if (self.info is MISSING) == (self.status == "FAILED"):
            raise ValueError("info comes with FAILED only, and FAILED always has one")
        return self

    @classmethod
    def refused(cls, re: str | None, stream: str | None, info: str) -> StreamStatus:
        """A publish or play that cannot start (a publish names no stream)."""
        return cls(re=re, stream=stream, status="FAILED", info=info)

    @classmethod
    def failed(cls, stream: str, info: str) -> StreamStatus:
        """A stream or play that had started and has now ended."""
        return cls(stream=stream, status="FAILED", info=info)


# --- Events (no ``re``) ------------------------------------------------------------


class StreamRecordStatus(ServerMessage):
    """The publisher's stream is not being recorded although it asked: its
    record did not start (``FAILED``) or stopped (``STOPPED``); the stream goes on."""

    type: Literal["stream.record"] = "stream.record"
    stream: str
    status: Literal["FAILED", "STOPPED"]
    info: Literal["disk_quota", "disk_full"]


class StreamPaused(ServerMessage):
    """A played stream's video stopped coming because the player's link
    cannot carry the room's floor (``reason`` ``bandwidth``); audio goes on."""

    type: Literal["stream.paused"] = "stream.paused"
    stream: str
    reason: Literal["bandwidth"] = "bandwidth"


class StreamResumed(ServerMessage):
    """The video of a played stream paused for ``reason`` comes again."""

    type: Literal["stream.resumed"] = "stream.resumed"
    stream: str
    reason: Literal["bandwidth"] = "bandwidth"


class RoomJoined(ServerMessage):
    type: Literal["room.joined"] = "room.joined"
    room: str
    participant: Participant


class RoomLeft(ServerMessage):
    type: Literal["room.left"] = "room.left"
    room: str
    participant: ParticipantRef
    reason: Literal["leave", "disconnect", "kicked"]
    # The moderator, with reason kicked.
    by: str | MISSING = MISSING

    @model_validator(mode="after")
    def _by_with_kicked(self) -> RoomLeft:
        if (self.by is MISSING) == (self.reason == "kicked"):
            raise ValueError("by comes with reason kicked only, and kicked always has one")
        return self


class RoomPublished(ServerMessage):
    type: Literal["room.published"] = "room.published"
    room: str
    stream: Stream


class RoomUnpublished(ServerMessage):
    type: Literal["room.unpublished"] = "room.unpublished"
    room: str
    stream: StreamRef


class RoomMuted(ServerMessage):
    type: Literal["room.muted"] = "room.muted"
    room: str
    stream: Stream
    # A moderator muted (or unmuted) another participant's stream.
    by: str | MISSING = MISSING


class RoomLocked(ServerMessage):
    type: Literal["room.locked"] = "room.locked"
    room: str
    locked: bool
    by: str


class RoomMessageEvent(ServerMessage):
    type: Literal["room.message"] = "room.message"
    room: str
    message: ChatMessage


class RoomRecording(ServerMessage):
    """The room's recording started (``recording`` true) or stopped, and who started it."""

    type: Literal["room.recording"] = "room.recording"
    room: str
    recording: bool
    by: str


class RoomFinalized(ServerMessage):
    type: Literal["room.finalized"] = "room.finalized"
    room: str
    # operator: from the admin; ended: a moderator ended it for everyone.
    reason: Literal["operator", "ended"]
    by: str | MISSING = MISSING


class Speaker(WireObject):
    participant: str
    stream: str
    # 0 (-60 dBov or quieter) to 1 (full scale), in steps of 0.05.
    level: float


class RoomSpeakers(ServerMessage):
    """Who speaks in the room now, loudest first; empty when nobody does."""

    type: Literal["room.speakers"] = "room.speakers"
    room: str
    speakers: list[Speaker]


RoomEvent = (
    RoomJoined | RoomLeft | RoomPublished | RoomUnpublished | RoomMuted | RoomLocked | RoomMessageEvent | RoomFinalized
    | RoomSpeakers | RoomRecording
)

SERVER_MESSAGES: tuple[type[ServerMessage], ...] = (
    Ok,
    ErrorReply,
    Pong,
    SessionStatus,
    SessionIceServers,
    RoomState,
    RoomFailed,
    StreamAnswer,
    StreamStatus,
    StreamRecordStatus,
    StreamPaused,
    StreamResumed,
    RoomJoined,
    RoomLeft,
    RoomPublished,
    RoomUnpublished,
    RoomMuted,
    RoomLocked,
    RoomMessageEvent,
    RoomFinalized,
    RoomSpeakers,
    RoomRecording,
)
