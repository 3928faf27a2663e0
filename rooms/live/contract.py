"""Live room state: who is in which room right now, which sessions and
processes are alive, which rooms wait for finalization.

This module is the contract; two backends keep it: ``rooms.live.redis``
(several processes; every change that decides something is one Lua script,
so two processes racing for the same login can never both win) and
``rooms.live.memory`` (the embedded one-process default; every method runs
without awaiting in between, which makes it atomic on the event loop).

A room moves ``active`` → ``idle`` (emptied by a drop) → ``active`` (join)
or → ``finalizing`` (emptied by a leave, or idle deadline passed) → gone.
While a room is ``finalizing`` joins wait: the next join starts a new room
with a new ``id`` once the finalizer has written the history and called
``room_forget``. A finalizer that dies leaves a lease that expires, and a
sweep takes the room over.

Each room counts its events (``seq``). A joiner learns the count at its
join, together with the members at that instant; events numbered up to it
are already in its snapshot, and so is the room's recent public chat, kept
here (the database is its archive). The pub/sub channel layer delivers an event to
whoever is subscribed when it *arrives*, which can be a joiner that was not
there when it was sent: the count lets the connection drop those.

The state carries an epoch, written once when it begins. Should the state
be lost (a Redis restarted without persistence, flushed, failed over to an
empty replica), the epoch is gone or different: every process then ends
the sessions it opened under the old one, and the rooms are rebuilt from
who reconnects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

JoinOutcome = Literal["joined", "already", "login_taken", "full", "busy", "locked", "server_full"]
LeaveOutcome = Literal["absent", "left", "finalize", "idle"]


@dataclass(frozen=True)
class JoinResult:
    outcome: JoinOutcome
    room_id: str = ""
    record: bool = False
    created: bool = False
    reactivated: bool = False
    # The room's event count after this join, and who was in it then.
    seq: int = 0
    members: dict[str, str] = field(default_factory=dict)
    # Recent public messages, oldest first, as the JSON the poster gave.
    history: list[str] = field(default_factory=list)
    # Each member's profile (display name, metadata, hidden) as the JSON its
    # join gave; "" for none.
    profiles: dict[str, str] = field(default_factory=dict)
    locked: bool = False
    # Who started the room's recording (the login whose join created it with
    # record); "" when the room does not record.
    recorded_by: str = ""


@dataclass(frozen=True)
class LeaveResult:
    outcome: LeaveOutcome
    room_id: str = ""
    record: bool = False
    seq: int = 0
    # The member's profile as its join gave it.
    profile: str = ""


@dataclass(frozen=True)
class ClaimedRoom:
    name: str
    room_id: str
    record: bool
    was_idle: bool


@dataclass(frozen=True)
class SessionInfo:
    sid: str
    username: str
    channel: str
    process: str


class LiveState(Protocol):
    async def epoch_get(self) -> str | None:
        """The state's epoch; None once the state was lost (see ``epoch_ensure``)."""
        ...
    async def epoch_ensure(self, candidate: str) -> str:
        """The state's epoch, set to ``candidate`` first if it has none."""
        ...

    async def session_open(self, info: SessionInfo) -> None: ...
    async def session_get(self, sid: str) -> SessionInfo | None: ...
    async def session_rooms(self, sid: str) -> set[str]: ...
    async def session_close(self, info: SessionInfo) -> None: ...

    async def room_join(
        self, *, name: str, login: str, sid: str, new_room_id: str, record: bool,
        max_participants: int, now_ms: int, profile: str = "", max_rooms: int = 0,
    ) -> JoinResult:
        """``login_taken`` comes with ``members`` naming the holder's session;
        ``server_full``: the room is not live and ``max_rooms`` (0: no limit) are."""
        ...
    async def room_leave(
        self, *, name: str, login: str, sid: str, now_ms: int, lease_ms: int,
        idle_deadline_ms: int | None,
    ) -> LeaveResult: ...
    async def room_members(self, name: str) -> dict[str, str]: ...
    async def room_profiles(self, name: str) -> dict[str, str]: ...
    async def room_status(self, name: str) -> str | None:
        """``active``, ``idle``, ``finalizing``, or None when the room is not live."""
        ...
    async def room_locked(self, name: str) -> bool: ...
    async def room_recorded_by(self, name: str) -> str:
        """Who started the room's recording; "" when it does not record or is not live."""
        ...
    async def room_lock(self, *, name: str, locked: bool) -> int | None:
        """Lock or unlock an active room: its event count after, or None if there is no such room."""
        ...
    async def room_chat_post(self, *, name: str, message_json: str | None, history_length: int) -> int: ...
    async def room_event_seq(self, name: str) -> int: ...
    async def room_forget(self, *, name: str, room_id: str) -> bool: ...
    async def rooms_claim_due(self, *, now_ms: int, lease_ms: int, limit: int) -> list[ClaimedRoom]: ...

    async def process_heartbeat(self, process: str, now_ms: int) -> bool:
        """Record that ``process`` lives; False when it was not registered
        (its first heartbeat, or a sweep took it for dead, or the state was lost)."""
        ...
    async def processes_claim_dead(self, *, dead_before_ms: int, now_ms: int, limit: int) -> list[str]: ...
    async def process_sessions(self, process: str) -> set[str]: ...
    async def process_forget(self, process: str) -> None: ...

