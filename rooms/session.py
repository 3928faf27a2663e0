"""A connection's signaling session, and the error a refused request raises."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from rooms.access_tokens import AccessClaims
from rooms.live.contract import SessionInfo
from rooms.live.rates import TokenBucket
from rooms.server_messages import Stream


@dataclass(frozen=True)
class Membership:
    """This connection's place in one room."""

    room_id: str
    # The room's event count at the join: later events are news to us.
    joined_seq: int
    # Room multi-record: every stream published in the room is recorded.
    record: bool = False


@dataclass(frozen=True)
class MediaRequest:
    """A publish or play this connection asked a media node for."""

    # The client's request id: the ``re`` of the answer.
    client_request_id: str | None
    room: str
    room_id: str
    # The stream as the client sees it when the node answers.
    stream: Stream
    # A publish: the stream is recorded.
    record: bool = False


@dataclass
class Session:
    """One connection's signaling session."""

    info: SessionInfo
    # The live state's epoch when the session opened (rooms.live_epoch).
    epoch: str = ""
    # The verified access token; None for a session without one (open mode).
    claims: AccessClaims | None = None
    # The client's address, for the audit trail.
    address: str = ""
    # When the TURN credentials it was given expire (Unix seconds), if any.
    ice_servers_expires_at: int | None = None
    rooms: dict[str, Membership] = field(default_factory=dict)
    # Publishes and plays sent to media nodes, by the node request id, until
    # the node answers; then publishes, by stream id, until their first media.
    media_requests: dict[str, MediaRequest] = field(default_factory=dict)
    publishes_starting: dict[str, MediaRequest] = field(default_factory=dict)
    chat_bucket: TokenBucket = field(
        default_factory=lambda: TokenBucket(settings.CHAT_RATE_PER_SECOND, settings.CHAT_RATE_BURST)
    )
    join_bucket: TokenBucket = field(
        default_factory=lambda: TokenBucket(settings.JOINS_PER_SECOND, settings.JOINS_BURST)
    )
    # The peer connections this connection has on media nodes, asked for or
    # live, by stream id, with the stream's room: counted against
    # PEER_CONNECTIONS_PER_SESSION, released when they end.
    publishes: dict[str, str] = field(default_factory=dict)
    plays: dict[str, str] = field(default_factory=dict)

    @property
    def sid(self) -> str:
        return self.info.sid

    @property
    def username(self) -> str:
        return self.info.username

    def peer_connections(self) -> int:
        return len(self.publishes) + len(self.plays)

    def stream_forget(self, stream: str) -> None:
        """The stream ended: this connection's publish or play of it is gone."""
        self.publishes.pop(stream, None)
        self.plays.pop(stream, None)

    def room_forget(self, room: str) -> None:
        """The connection is no longer in ``room``: nor are its publishes and plays there."""
        self.rooms.pop(room, None)
        for streams in (self.publishes, self.plays):
            for stream in [stream for stream, in_room in streams.items() if in_room == room]:
                del streams[stream]


class ServiceError(Exception):
    """A well-formed request that is not allowed; becomes an ``error`` reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
