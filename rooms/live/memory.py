"""The live state of one process (the embedded default): plain dicts.

Every method runs to its end without awaiting, so on the event loop each
is as atomic as a Lua script is in Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rooms.live.contract import ClaimedRoom, JoinResult, LeaveResult, SessionInfo


@dataclass
class _MemoryRoom:
    room_id: str
    record: bool
    status: str = "active"
    seq: int = 0
    members: dict[str, str] = field(default_factory=dict)
    profiles: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    locked: bool = False
    recorded_by: str = ""


class MemoryLiveState:
    """One process's live state. No method awaits before it is done."""

    def __init__(self) -> None:
        # In one process the state lives exactly as long as its epoch.
        self._epoch: str | None = None
        self._rooms: dict[str, _MemoryRoom] = {}
        self._deadlines: dict[str, int] = {}
        self._sessions: dict[str, SessionInfo] = {}
        self._session_rooms: dict[str, set[str]] = {}
        self._processes: dict[str, int] = {}
        self._process_sessions: dict[str, set[str]] = {}

    async def epoch_get(self) -> str | None:
        return self._epoch

    async def epoch_ensure(self, candidate: str) -> str:
        if self._epoch is None:
            self._epoch = candidate
        return self._epoch

    async def session_open(self, info: SessionInfo) -> None:
        self._sessions[info.sid] = info
        self._session_rooms.setdefault(info.sid, set())
        self._process_sessions.setdefault(info.process, set()).add(info.sid)

    async def session_get(self, sid: str) -> SessionInfo | None:
        return self._sessions.get(sid)

    async def session_rooms(self, sid: str) -> set[str]:
        return set(self._session_rooms.get(sid, ()))

    async def session_close(self, info: SessionInfo) -> None:
        self._sessions.pop(info.sid, None)
        self._session_rooms.pop(info.sid, None)
        self._process_sessions.get(info.process, set()).discard(info.sid)

    async def room_join(
        self, *, name: str, login: str, sid: str, new_room_id: str, record: bool,
        max_participants: int, now_ms: int, profile: str = "", max_rooms: int = 0,
    ) -> JoinResult:
        room = self._rooms.get(name)
        created = False
        if room is None:
            if max_rooms and len(self._rooms) >= max_rooms:
                return JoinResult("server_full")
            room = self._rooms[name] = _MemoryRoom(
                room_id=new_room_id, record=record, recorded_by=login if record else ""
            )
            created = True
        elif room.status == "finalizing":
            return JoinResult("busy")
        holder = room.members.get(login)
        if holder is not None:
            if holder == sid:
                return JoinResult(
                    "already", room.room_id, room.record, seq=room.seq, members=dict(room.members),
                    history=list(room.history), profiles=dict(room.profiles), locked=room.locked,
                    recorded_by=room.recorded_by,
                )
            return JoinResult("login_taken", room.room_id, room.record, members={login: holder})
        if room.locked:
            return JoinResult("locked", room.room_id, room.record)
        if len(room.members) >= max_participants:
            return JoinResult("full", room.room_id, room.record)
        room.members[login] = sid
        room.profiles[login] = profile
        room.seq += 1
        reactivated = room.status == "idle"
        if reactivated:
            room.status = "active"
            self._deadlines.pop(name, None)
        self._session_rooms.setdefault(sid, set()).add(name)
        return JoinResult(
            "joined", room.room_id, room.record, created, reactivated, seq=room.seq, members=dict(room.members),
            history=list(room.history), profiles=dict(room.profiles), locked=room.locked,
            recorded_by=room.recorded_by,
        )

    async def room_leave(
        self, *, name: str, login: str, sid: str, now_ms: int, lease_ms: int,
        idle_deadline_ms: int | None,
    ) -> LeaveResult:
        room = self._rooms.get(name)
        if room is None or room.members.get(login) != sid:
            return LeaveResult("absent")
        del room.members[login]
        profile = room.profiles.pop(login, "")
        room.seq += 1
        self._session_rooms.get(sid, set()).discard(name)
        if room.members:
            return LeaveResult("left", room.room_id, room.record, room.seq, profile)
        if idle_deadline_ms is None:
            room.status = "finalizing"
            self._deadlines[name] = now_ms + lease_ms
            return LeaveResult("finalize", room.room_id, room.record, room.seq, profile)
        room.status = "idle"
        self._deadlines[name] = idle_deadline_ms
        return LeaveResult("idle", room.room_id, room.record, room.seq, profile)

    async def room_members(self, name: str) -> dict[str, str]:
        room = self._rooms.get(name)
        return dict(room.members) if room else {}

    async def room_profiles(self, name: str) -> dict[str, str]:
        room = self._rooms.get(name)
        return dict(room.profiles) if room else {}

    async def room_status(self, name: str) -> str | None:
        room = self._rooms.get(name)
        return room.status if room else None

    async def room_locked(self, name: str) -> bool:
        room = self._rooms.get(name)
        return room is not None and room.locked

    async def room_recorded_by(self, name: str) -> str:
        room = self._rooms.get(name)
        return room.recorded_by if room is not None else ""

    async def room_lock(self, *, name: str, locked: bool) -> int | None:
        room = self._rooms.get(name)
        if room is None or room.status == "finalizing":
            return None
        room.locked = locked
        room.seq += 1
        return room.seq

    async def room_event_seq(self, name: str) -> int:
        return await self.room_chat_post(name=name, message_json=None, history_length=0)

    async def room_chat_post(self, *, name: str, message_json: str | None, history_length: int) -> int:
        room = self._rooms.get(name)
        if room is None:
            return 0
        room.seq += 1
        if message_json is not None:
            room.history = [*room.history, message_json][-history_length:]
        return room.seq

    async def room_forget(self, *, name: str, room_id: str) -> bool:
        room = self._rooms.get(name)
        if room is None or room.room_id != room_id or room.status != "finalizing":
            return False
        del self._rooms[name]
        self._deadlines.pop(name, None)
        return True

    async def rooms_claim_due(self, *, now_ms: int, lease_ms: int, limit: int) -> list[ClaimedRoom]:
        claimed: list[ClaimedRoom] = []
        for name, deadline in sorted(self._deadlines.items(), key=lambda item: item[1]):
            if deadline > now_ms or len(claimed) >= limit:
                break
            room = self._rooms.get(name)
            if room is None or room.status == "active" or room.members:
                self._deadlines.pop(name, None)
                if room is not None and room.members:
                    room.status = "active"
                continue
            was_idle = room.status == "idle"
            room.status = "finalizing"
            self._deadlines[name] = now_ms + lease_ms
            claimed.append(ClaimedRoom(name, room.room_id, room.record, was_idle))
        return claimed

    async def process_heartbeat(self, process: str, now_ms: int) -> bool:
        registered = process in self._processes
        self._processes[process] = now_ms
        return registered

    async def processes_claim_dead(self, *, dead_before_ms: int, now_ms: int, limit: int) -> list[str]:
        dead = [p for p, beat in self._processes.items() if beat < dead_before_ms][:limit]
        for process in dead:
            self._processes[process] = now_ms
        return dead

    async def process_sessions(self, process: str) -> set[str]:
        return set(self._process_sessions.get(process, ()))

    async def process_forget(self, process: str) -> None:
        self._processes.pop(process, None)
        self._process_sessions.pop(process, None)
