"""Live room state: who is in which room right now, which sessions and
processes are alive, which rooms wait for finalization.

Two implementations with one contract: ``RedisLiveState`` (several
processes; every change that decides something is one Lua script, so two
processes racing for the same login can never both win) and
``MemoryLiveState`` (the embedded one-process default; every method runs
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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from django.conf import settings

from rooms.loops import PerLoop

JoinOutcome = Literal["joined", "already", "login_taken", "full", "busy"]
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


@dataclass(frozen=True)
class LeaveResult:
    outcome: LeaveOutcome
    room_id: str = ""
    record: bool = False
    seq: int = 0


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
    async def session_open(self, info: SessionInfo) -> None: ...
    async def session_get(self, sid: str) -> SessionInfo | None: ...
    async def session_rooms(self, sid: str) -> set[str]: ...
    async def session_close(self, info: SessionInfo) -> None: ...

    async def room_join(
        self, *, name: str, login: str, sid: str, new_room_id: str, record: bool,
        max_participants: int, now_ms: int,
    ) -> JoinResult: ...
    async def room_leave(
        self, *, name: str, login: str, sid: str, now_ms: int, lease_ms: int,
        idle_deadline_ms: int | None,
    ) -> LeaveResult: ...
    async def room_members(self, name: str) -> dict[str, str]: ...
    async def room_chat_post(self, *, name: str, message_json: str | None, history_length: int) -> int: ...
    async def room_event_seq(self, name: str) -> int: ...
    async def room_forget(self, *, name: str, room_id: str) -> bool: ...
    async def rooms_claim_due(self, *, now_ms: int, lease_ms: int, limit: int) -> list[ClaimedRoom]: ...

    async def process_heartbeat(self, process: str, now_ms: int) -> None: ...
    async def processes_claim_dead(self, *, dead_before_ms: int, now_ms: int, limit: int) -> list[str]: ...
    async def process_sessions(self, process: str) -> set[str]: ...
    async def process_forget(self, process: str) -> None: ...

    async def close(self) -> None: ...


# --- Memory -----------------------------------------------------------------


@dataclass
class _MemoryRoom:
    room_id: str
    record: bool
    status: str = "active"
    seq: int = 0
    members: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)


class MemoryLiveState:
    """One process's live state. No method awaits before it is done."""

    def __init__(self) -> None:
        self._rooms: dict[str, _MemoryRoom] = {}
        self._deadlines: dict[str, int] = {}
        self._sessions: dict[str, SessionInfo] = {}
        self._session_rooms: dict[str, set[str]] = {}
        self._processes: dict[str, int] = {}
        self._process_sessions: dict[str, set[str]] = {}

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
        max_participants: int, now_ms: int,
    ) -> JoinResult:
        room = self._rooms.get(name)
        created = False
        if room is None:
            room = self._rooms[name] = _MemoryRoom(room_id=new_room_id, record=record)
            created = True
        elif room.status == "finalizing":
            return JoinResult("busy")
        holder = room.members.get(login)
        if holder is not None:
            if holder == sid:
                return JoinResult(
                    "already", room.room_id, room.record, seq=room.seq, members=dict(room.members),
                    history=list(room.history),
                )
            return JoinResult("login_taken", room.room_id, room.record)
        if len(room.members) >= max_participants:
            return JoinResult("full", room.room_id, room.record)
        room.members[login] = sid
        room.seq += 1
        reactivated = room.status == "idle"
        if reactivated:
            room.status = "active"
            self._deadlines.pop(name, None)
        self._session_rooms.setdefault(sid, set()).add(name)
        return JoinResult(
            "joined", room.room_id, room.record, created, reactivated, seq=room.seq, members=dict(room.members),
            history=list(room.history),
        )

    async def room_leave(
        self, *, name: str, login: str, sid: str, now_ms: int, lease_ms: int,
        idle_deadline_ms: int | None,
    ) -> LeaveResult:
        room = self._rooms.get(name)
        if room is None or room.members.get(login) != sid:
            return LeaveResult("absent")
        del room.members[login]
        room.seq += 1
        self._session_rooms.get(sid, set()).discard(name)
        if room.members:
            return LeaveResult("left", room.room_id, room.record, room.seq)
        if idle_deadline_ms is None:
            room.status = "finalizing"
            self._deadlines[name] = now_ms + lease_ms
            return LeaveResult("finalize", room.room_id, room.record, room.seq)
        room.status = "idle"
        self._deadlines[name] = idle_deadline_ms
        return LeaveResult("idle", room.room_id, room.record, room.seq)

    async def room_members(self, name: str) -> dict[str, str]:
        room = self._rooms.get(name)
        return dict(room.members) if room else {}

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

    async def process_heartbeat(self, process: str, now_ms: int) -> None:
        self._processes[process] = now_ms

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

    async def close(self) -> None:
        return None


# --- Redis ------------------------------------------------------------------

_JOIN = """
local room, members, deadlines, session_rooms, chat = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, login, sid, new_id, record, max, now =
    ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local status = redis.call('HGET', room, 'status')
if status == 'finalizing' then return {'busy', '', '0', 0, 0, 0, {}, {}} end
local created = 0
if not status then
  redis.call('HSET', room, 'id', new_id, 'status', 'active', 'record', record, 'created_ms', now)
  status = 'active'
  created = 1
end
local id = redis.call('HGET', room, 'id')
local rec = redis.call('HGET', room, 'record')
local holder = redis.call('HGET', members, login)
if holder then
  if holder == sid then
    local seq = tonumber(redis.call('HGET', room, 'seq') or '0')
    return {'already', id, rec, 0, 0, seq, redis.call('HGETALL', members), redis.call('LRANGE', chat, 0, -1)}
  end
  return {'login_taken', id, rec, 0, 0, 0, {}, {}}
end
if redis.call('HLEN', members) >= max then return {'full', id, rec, 0, 0, 0, {}, {}} end
redis.call('HSET', members, login, sid)
redis.call('SADD', session_rooms, name)
local seq = redis.call('HINCRBY', room, 'seq', 1)
local reactivated = 0
if status == 'idle' then
  redis.call('HSET', room, 'status', 'active')
  redis.call('ZREM', deadlines, name)
  reactivated = 1
end
return {'joined', id, rec, created, reactivated, seq, redis.call('HGETALL', members), redis.call('LRANGE', chat, 0, -1)}
"""

_LEAVE = """
local room, members, deadlines, session_rooms = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, login, sid, now, lease, idle_deadline =
    ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
if redis.call('HGET', members, login) ~= sid then return {'absent', '', '0', 0} end
redis.call('HDEL', members, login)
redis.call('SREM', session_rooms, name)
local id = redis.call('HGET', room, 'id')
local rec = redis.call('HGET', room, 'record')
local seq = redis.call('HINCRBY', room, 'seq', 1)
if redis.call('HLEN', members) > 0 then return {'left', id, rec, seq} end
if idle_deadline == '' then
  redis.call('HSET', room, 'status', 'finalizing')
  redis.call('ZADD', deadlines, now + lease, name)
  return {'finalize', id, rec, seq}
end
redis.call('HSET', room, 'status', 'idle')
redis.call('ZADD', deadlines, tonumber(idle_deadline), name)
return {'idle', id, rec, seq}
"""

_FORGET = """
local room, members, deadlines = KEYS[1], KEYS[2], KEYS[3]
if redis.call('HGET', room, 'id') ~= ARGV[2] then return 0 end
if redis.call('HGET', room, 'status') ~= 'finalizing' then return 0 end
redis.call('DEL', room, members, KEYS[4])
redis.call('ZREM', deadlines, ARGV[1])
return 1
"""

_CHAT_POST = """
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if ARGV[1] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
end
return seq
"""

_CLAIM_ROOM = """
local room, members, deadlines = KEYS[1], KEYS[2], KEYS[3]
local name, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local score = redis.call('ZSCORE', deadlines, name)
if not score or tonumber(score) > now then return false end
local status = redis.call('HGET', room, 'status')
if not status or status == 'active' then
  redis.call('ZREM', deadlines, name)
  return false
end
if redis.call('HLEN', members) > 0 then
  redis.call('HSET', room, 'status', 'active')
  redis.call('ZREM', deadlines, name)
  return false
end
redis.call('HSET', room, 'status', 'finalizing')
redis.call('ZADD', deadlines, now + lease, name)
local was_idle = 0
if status == 'idle' then was_idle = 1 end
return {redis.call('HGET', room, 'id'), redis.call('HGET', room, 'record'), was_idle}
"""

_CLAIM_PROCESS = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


def decoded(value: object) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLiveState:
    """Live state shared by every process through one Redis."""

    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import BlockingConnectionPool, Redis

        # Blocking: a burst (everyone leaving at once) waits for a connection
        # instead of failing with "Too many connections".
        self._redis = Redis(connection_pool=BlockingConnectionPool.from_url(url, max_connections=64, timeout=20))
        self._prefix = prefix
        self._join = self._redis.register_script(_JOIN)
        self._leave = self._redis.register_script(_LEAVE)
        self._forget = self._redis.register_script(_FORGET)
        self._chat_post = self._redis.register_script(_CHAT_POST)
        self._claim_room = self._redis.register_script(_CLAIM_ROOM)
        self._claim_process = self._redis.register_script(_CLAIM_PROCESS)

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    def _room_keys(self, name: str) -> list[str]:
        return [self._key("room", name), self._key("room", name, "members"), self._key("deadlines")]

    def _chat_key(self, name: str) -> str:
        return self._key("room", name, "chat")

    async def session_open(self, info: SessionInfo) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._key("session", info.sid),
                mapping={"username": info.username, "channel": info.channel, "process": info.process},
            )
            pipe.sadd(self._key("process", info.process, "sessions"), info.sid)
            await pipe.execute()

    async def session_get(self, sid: str) -> SessionInfo | None:
        raw = await self._redis.hgetall(self._key("session", sid))
        if not raw:
            return None
        fields = {decoded(k): decoded(v) for k, v in raw.items()}
        return SessionInfo(sid, fields["username"], fields["channel"], fields["process"])

    async def session_rooms(self, sid: str) -> set[str]:
        return {decoded(name) for name in await self._redis.smembers(self._key("session", sid, "rooms"))}

    async def session_close(self, info: SessionInfo) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key("session", info.sid), self._key("session", info.sid, "rooms"))
            pipe.srem(self._key("process", info.process, "sessions"), info.sid)
            await pipe.execute()

    async def room_join(
        self, *, name: str, login: str, sid: str, new_room_id: str, record: bool,
        max_participants: int, now_ms: int,
    ) -> JoinResult:
        keys = [*self._room_keys(name), self._key("session", sid, "rooms"), self._chat_key(name)]
        args = [name, login, sid, new_room_id, "1" if record else "0", max_participants, now_ms]
        outcome, room_id, rec, created, reactivated, seq, flat_members, chat = await self._join(keys=keys, args=args)
        members = {decoded(flat_members[i]): decoded(flat_members[i + 1]) for i in range(0, len(flat_members), 2)}
        return JoinResult(
            decoded(outcome),  # type: ignore[arg-type]
            decoded(room_id),
            decoded(rec) == "1",
            bool(created),
            bool(reactivated),
            int(seq),
            members,
            [decoded(item) for item in chat],
        )

    async def room_leave(
        self, *, name: str, login: str, sid: str, now_ms: int, lease_ms: int,
        idle_deadline_ms: int | None,
    ) -> LeaveResult:
        keys = [*self._room_keys(name), self._key("session", sid, "rooms")]
        deadline = "" if idle_deadline_ms is None else str(idle_deadline_ms)
        outcome, room_id, rec, seq = await self._leave(keys=keys, args=[name, login, sid, now_ms, lease_ms, deadline])
        return LeaveResult(decoded(outcome), decoded(room_id), decoded(rec) == "1", int(seq))  # type: ignore[arg-type]

    async def room_members(self, name: str) -> dict[str, str]:
        raw = await self._redis.hgetall(self._key("room", name, "members"))
        return {decoded(k): decoded(v) for k, v in raw.items()}

    async def room_event_seq(self, name: str) -> int:
        return await self.room_chat_post(name=name, message_json=None, history_length=0)

    async def room_chat_post(self, *, name: str, message_json: str | None, history_length: int) -> int:
        keys = [self._key("room", name), self._chat_key(name)]
        return int(await self._chat_post(keys=keys, args=[message_json or "", history_length]))

    async def room_forget(self, *, name: str, room_id: str) -> bool:
        return bool(await self._forget(keys=[*self._room_keys(name), self._chat_key(name)], args=[name, room_id]))

    async def rooms_claim_due(self, *, now_ms: int, lease_ms: int, limit: int) -> list[ClaimedRoom]:
        due = await self._redis.zrangebyscore(self._key("deadlines"), "-inf", now_ms, start=0, num=limit)
        claimed = []
        for raw_name in due:
            name = decoded(raw_name)
            result = await self._claim_room(keys=self._room_keys(name), args=[name, now_ms, lease_ms])
            if result:
                room_id, rec, was_idle = result
                claimed.append(ClaimedRoom(name, decoded(room_id), decoded(rec) == "1", bool(was_idle)))
        return claimed

    async def process_heartbeat(self, process: str, now_ms: int) -> None:
        await self._redis.zadd(self._key("processes"), {process: now_ms})

    async def processes_claim_dead(self, *, dead_before_ms: int, now_ms: int, limit: int) -> list[str]:
        key = self._key("processes")
        candidates = await self._redis.zrangebyscore(key, "-inf", f"({dead_before_ms}", start=0, num=limit)
        claimed = []
        for raw in candidates:
            process = decoded(raw)
            # Re-scoring to "now" is the lease: should this sweeper die half
            # way, the process looks dead again one TTL later.
            if await self._claim_process(keys=[key], args=[process, dead_before_ms, now_ms]):
                claimed.append(process)
        return claimed

    async def process_sessions(self, process: str) -> set[str]:
        return {decoded(sid) for sid in await self._redis.smembers(self._key("process", process, "sessions"))}

    async def process_forget(self, process: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._key("processes"), process)
            pipe.delete(self._key("process", process, "sessions"))
            await pipe.execute()

    @property
    def redis(self) -> Any:
        """The client, for other per-loop stores that share its connections."""
        return self._redis

    async def close(self) -> None:
        await self._redis.aclose()


_memory_state: MemoryLiveState | None = None
_redis_states = PerLoop(lambda: RedisLiveState(settings.REDIS_URL, settings.LIVE_STATE_PREFIX))


def get_live_state() -> LiveState:
    """This process's live state; with Redis, one client per event loop."""
    global _memory_state
    if not settings.REDIS_URL:
        if _memory_state is None:
            _memory_state = MemoryLiveState()
        return _memory_state
    return _redis_states.get()


def reset_live_state() -> None:
    """Forget the in-memory state (tests start each case from nothing)."""
    global _memory_state
    _memory_state = None
