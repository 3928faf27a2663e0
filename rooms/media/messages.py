"""The node protocol: commands web processes send a media node, and its reports.

Both travel over the channel layer as flat dicts of JSON values (see
docs/architecture.md, "The node protocol"). Commands go to the node's
channel; reports go to the channel a command named in ``reply_to`` (the
requesting connection). Every message carries ``v``, the protocol version:
a reader refuses a version it does not speak, and ignores fields it does
not know, so a version may gain optional fields but changes nothing else.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

NODE_PROTOCOL_VERSION = 1

FailureReason = Literal[
    "no_media",
    "ice_failed",
    "codec_not_supported",
    "unknown_stream",
    "node_stopped",
    "bad_command",
    "version_not_supported",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class Muted(_Model):
    audio: bool = False
    video: bool = False


class NodeMessage(_Model):
    v: int = NODE_PROTOCOL_VERSION


# --- commands: web -> node --------------------------------------------------------


class PublishCommand(NodeMessage):
    """Accept a publisher's offer; record the stream if ``record``."""

    type: Literal["media.publish"] = "media.publish"
    request_id: str
    reply_to: str
    room: str
    # The room's current life (its live id): records and history name it.
    room_id: str
    stream: str
    participant: str
    kind: Literal["camera", "screen"]
    sdp: str
    record: bool = False


class PlayCommand(NodeMessage):
    """Accept a player's offer for a stream this node publishes; ``reply_to`` is the player."""

    type: Literal["media.play"] = "media.play"
    request_id: str
    reply_to: str
    room: str
    stream: str
    sdp: str
    muted: Muted = Muted()


class StopCommand(NodeMessage):
    """Close one player's play of a stream."""

    type: Literal["media.stop"] = "media.stop"
    room: str
    stream: str
    player: str


class StopPlayerCommand(NodeMessage):
    """Close a player's plays of these streams (it left the room)."""

    type: Literal["media.stop_player"] = "media.stop_player"
    room: str
    player: str
    streams: list[str]


class UnpublishCommand(NodeMessage):
    """End a stream: its players hear ``ended``, its sinks finish."""

    type: Literal["media.unpublish"] = "media.unpublish"
    room: str
    stream: str


class MuteCommand(NodeMessage):
    """Pause or resume forwarding a stream's kinds to every player."""

    type: Literal["media.mute"] = "media.mute"
    room: str
    stream: str
    muted: Muted


Command = Annotated[
    PublishCommand | PlayCommand | StopCommand | StopPlayerCommand | UnpublishCommand | MuteCommand,
    Field(discriminator="type"),
]


# --- reports: node -> web ---------------------------------------------------------


class Report(NodeMessage):
    type: Literal["media.report"] = "media.report"


class AnswerReport(Report):
    """The node accepted the offer of command ``request_id``: the stream (or
    play) started with ``codecs`` (kind -> codec name)."""

    report: Literal["answer"] = "answer"
    request_id: str
    room: str
    stream: str
    # The player's channel for a play; null for a publish.
    player: str | None = None
    sdp: str
    codecs: dict[str, str]


class PublishingReport(Report):
    """A published stream's first playable media arrived (its first video
    keyframe, or its first audio packet when it has no video)."""

    report: Literal["publishing"] = "publishing"
    room: str
    stream: str
    codecs: dict[str, str]


class PlayingReport(Report):
    """The node sent a player its first frame of the stream."""

    report: Literal["playing"] = "playing"
    room: str
    stream: str
    player: str


class BandwidthReport(Report):
    """A player's video was paused because its link cannot carry the room's
    floor (``paused`` true), or resumed when the link recovered; its audio
    goes on either way."""

    report: Literal["bandwidth"] = "bandwidth"
    room: str
    stream: str
    player: str
    paused: bool


class FailedReport(Report):
    """A command, a stream or a play failed.

    ``request_id`` is set when this answers the command of that id (no
    ``answer`` came or will come); null when an accepted stream or play
    failed later. ``room`` and ``stream`` are null only when a refused
    command did not name them.
    """

    report: Literal["failed"] = "failed"
    request_id: str | None = None
    room: str | None
    stream: str | None
    player: str | None = None
    reason: FailureReason
    detail: str = ""


class RecordReport(Report):
    """A published stream's record did not start (``FAILED``) or stopped while
    the stream goes on (``STOPPED``): its disk quota or free-space floor."""

    report: Literal["record"] = "record"
    room: str
    stream: str
    status: Literal["FAILED", "STOPPED"]
    reason: Literal["disk_quota", "disk_full"]
    detail: str = ""


class EndedReport(Report):
    """A play ended because its stream was unpublished (``player`` set), or a
    publisher closed its connection (``player`` null)."""

    report: Literal["ended"] = "ended"
    room: str
    stream: str
    player: str | None = None


class Speaker(_Model):
    """A stream whose audio is loud enough to be speech, and how loud:
    ``level`` 0 (-60 dBov or quieter) to 1 (full scale), in steps of 0.05."""

    stream: str
    participant: str
    level: float


class SpeakersReport(Report):
    """Who speaks in ``room``, loudest first (none: nobody). Sent to the
    channel of one of the room's publishers when the ranking or a level
    changed, at most once per ``SPEAKERS_INTERVAL_MS``."""

    report: Literal["speakers"] = "speakers"
    room: str
    speakers: list[Speaker]


class LoadReport(Report):
    """What a node is serving, as of ``at_ms``: its heartbeat.

    ``rooms``, ``cpu``, ``host`` and ``pid`` came later in version 1
    (optional, for readers of earlier heartbeats): web processes place new
    rooms by them, and operators find the node's process by them.
    """

    report: Literal["load"] = "load"
    node: str
    published: int
    played: int
    at_ms: int
    # The rooms its publications belong to.
    rooms: int = 0
    # CPU seconds per second its process used since the previous heartbeat.
    cpu: float = 0.0
    host: str = ""
    pid: int = 0


AnyReport = Annotated[
    AnswerReport | PublishingReport | PlayingReport | FailedReport | RecordReport | EndedReport | SpeakersReport
    | LoadReport | BandwidthReport,
    Field(discriminator="report"),
]

_commands: TypeAdapter[Command] = TypeAdapter(Command)
_reports: TypeAdapter[AnyReport] = TypeAdapter(AnyReport)


class NodeMessageError(Exception):
    """A message this side cannot read: another version, or malformed."""

    def __init__(self, reason: Literal["bad_command", "version_not_supported"], detail: str) -> None:
        super().__init__(detail)
        self.reason: Literal["bad_command", "version_not_supported"] = reason
        self.detail = detail


def message_encode(message: NodeMessage) -> dict[str, Any]:
    """The channel-layer dict of a command or report."""
    return message.model_dump(mode="json")


def _version_check(raw: Any) -> None:
    if not isinstance(raw, dict):
        raise NodeMessageError("bad_command", f"a node message is an object, not {type(raw).__name__}")
    version = raw.get("v")
    if version != NODE_PROTOCOL_VERSION or isinstance(version, bool):
        raise NodeMessageError(
            "version_not_supported", f"this side speaks node protocol v{NODE_PROTOCOL_VERSION}, not v={version!r}"
        )


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'message'}: {problem['msg']}"
        for problem in error.errors(include_url=False)
    )


def command_decode(raw: Any) -> Command:
    """The command a channel-layer dict holds, or ``NodeMessageError``."""
    _version_check(raw)
    try:
        return _commands.validate_python(raw)
    except ValidationError as error:
        raise NodeMessageError("bad_command", _problems(error)) from None


def report_decode(raw: Any) -> AnyReport:
    """The report a channel-layer dict holds, or ``NodeMessageError``."""
    _version_check(raw)
    try:
        return _reports.validate_python(raw)
    except ValidationError as error:
        raise NodeMessageError("bad_command", _problems(error)) from None


def command_refusal(raw: Any, error: NodeMessageError) -> tuple[str, FailedReport] | None:
    """Where to send the ``failed`` report that refuses an unreadable command,
    and the report; None when the command named nowhere to reply to."""
    if not isinstance(raw, dict) or not isinstance(raw.get("reply_to"), str):
        return None

    def text(name: str) -> str | None:
        value = raw.get(name)
        return value if isinstance(value, str) else None

    report = FailedReport(
        request_id=text("request_id"),
        room=text("room"),
        stream=text("stream"),
        player=raw["reply_to"] if raw.get("type") == "media.play" else None,
        reason=error.reason,
        detail=error.detail,
    )
    return raw["reply_to"], report
