"""The live state shared by every process through one Redis.

Each change that decides something (a join, a leave, a claim) is one Lua
script from ``lua/``, so two processes racing for the same login or the
same room can never both win.
"""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from rooms.live.contract import ClaimedRoom, JoinResult, LeaveResult, SessionInfo

_LUA = Path(__file__).with_name("lua")


def lua_source(name: str) -> str:
    return (_LUA / f"{name}.lua").read_text()


# Read once per process; each client registers them (by SHA, no round trip).
_JOIN = lua_source("join")
_LEAVE = lua_source("leave")
_FORGET = lua_source("forget")
_CHAT_POST = lua_source("chat_post")
_CLAIM_ROOM = lua_source("claim_room")
_CLAIM_PROCESS = lua_source("claim_process")
_LOCK = lua_source("lock")
_EPOCH = lua_source("epoch")

# A request that meets an unreachable Redis fails within this bound (then
# answered ``unavailable``) rather than hang: every command the live state
# sends is a single key operation or a short script.
COMMAND_TIMEOUT_S = 1.0


def _pairs(flat: list[object]) -> dict[str, str]:
    return {decoded(flat[i]): decoded(flat[i + 1]) for i in range(0, len(flat), 2)}


def redis_client(url: str) -> Redis:
    # Blocking: a burst (everyone leaving at once) waits for a connection
    # instead of failing with "Too many connections".
    # from_pool: the client owns the pool, so closing the client closes its
    # connections (a client given a pool leaves them open: a Celery task's
    # loop per call leaked one socket per sweep).
    return Redis.from_pool(
        BlockingConnectionPool.from_url(
            url, max_connections=64, timeout=20,
            socket_timeout=COMMAND_TIMEOUT_S, socket_connect_timeout=COMMAND_TIMEOUT_S,
            # A pooled connection that Redis (or the network) closed while it
            # sat idle fails its next command: that command is sent again,
            # once, on a new connection. Timeouts are not retried: a request
            # is answered ``unavailable`` within COMMAND_TIMEOUT_S.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
    )


def decoded(value: object) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLiveState:
    """Live state under ``prefix`` in the Redis of ``redis`` (a client of one event loop)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._join = redis.register_script(_JOIN)
        self._leave = redis.register_script(_LEAVE)
        self._forget = redis.register_script(_FORGET)
        self._chat_post = redis.register_script(_CHAT_POST)
        self._claim_room = redis.register_script(_CLAIM_ROOM)
        self._claim_process = redis.register_script(_CLAIM_PROCESS)
        self._lock = redis.register_script(_LOCK)
        self._epoch = redis.register_script(_EPOCH)

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    def _room_keys(self, name: str) -> list[str]:
        return [self._key("room", name), self._key("room", name, "members"), self._key("deadlines")]

    def _rooms_key(self) -> str:
        # The names of the live rooms: counted against ROOMS_MAX.
        return self._key("rooms")

    def _chat_key(self, name: str) -> str:
        return self._key("room", name, "chat")

    def _profiles_key(self, name: str) -> str:
        return self._key("room", name, "profiles")

    async def epoch_get(self) -> str | None:
        value = await self._redis.get(self._key("epoch"))
        return decoded(value) if value is not None else None

    async def epoch_ensure(self, candidate: str) -> str:
        return decoded(await self._epoch(keys=[self._key("epoch")], args=[candidate]))

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
        max_participants: int, now_ms: int, profile: str = "", max_rooms: int = 0,
    ) -> JoinResult:
        keys = [
            *self._room_keys(name), self._key("session", sid, "rooms"), self._chat_key(name), self._profiles_key(name),
            self._rooms_key(),
        ]
        args = [name, login, sid, new_room_id, "1" if record else "0", max_participants, now_ms, profile, max_rooms]
        (
            outcome, room_id, rec, created, reactivated, seq, flat_members, chat, flat_profiles, locked, *recorded_by
        ) = await self._join(keys=keys, args=args)
        return JoinResult(
            decoded(outcome),  # type: ignore[arg-type]
            decoded(room_id),
            decoded(rec) == "1",
            bool(created),
            bool(reactivated),
            int(seq),
            _pairs(flat_members),
            [decoded(item) for item in chat],
            _pairs(flat_profiles),
            decoded(locked) == "1",
            # Refusals (busy, login_taken, ...) return no such element.
            decoded(recorded_by[0]) if recorded_by else "",
        )

    async def room_leave(
        self, *, name: str, login: str, sid: str, now_ms: int, lease_ms: int,
        idle_deadline_ms: int | None,
    ) -> LeaveResult:
        keys = [*self._room_keys(name), self._key("session", sid, "rooms"), self._profiles_key(name)]
        deadline = "" if idle_deadline_ms is None else str(idle_deadline_ms)
        outcome, room_id, rec, seq, profile = await self._leave(
            keys=keys, args=[name, login, sid, now_ms, lease_ms, deadline]
        )
        return LeaveResult(
            decoded(outcome), decoded(room_id), decoded(rec) == "1", int(seq), decoded(profile)  # type: ignore[arg-type]
        )

    async def room_members(self, name: str) -> dict[str, str]:
        raw = await self._redis.hgetall(self._key("room", name, "members"))
        return {decoded(k): decoded(v) for k, v in raw.items()}

    async def room_profiles(self, name: str) -> dict[str, str]:
        raw = await self._redis.hgetall(self._profiles_key(name))
        return {decoded(k): decoded(v) for k, v in raw.items()}

    async def room_status(self, name: str) -> str | None:
        status = await self._redis.hget(self._key("room", name), "status")
        return decoded(status) if status is not None else None

    async def room_locked(self, name: str) -> bool:
        return decoded(await self._redis.hget(self._key("room", name), "locked")) == "1"

    async def room_recorded_by(self, name: str) -> str:
        recorded_by = await self._redis.hget(self._key("room", name), "recorded_by")
        return decoded(recorded_by) if recorded_by is not None else ""

    async def room_lock(self, *, name: str, locked: bool) -> int | None:
        seq = int(await self._lock(keys=[self._key("room", name)], args=["1" if locked else "0"]))
        return None if seq < 0 else seq

    async def room_event_seq(self, name: str) -> int:
        return await self.room_chat_post(name=name, message_json=None, history_length=0)

    async def room_chat_post(self, *, name: str, message_json: str | None, history_length: int) -> int:
        keys = [self._key("room", name), self._chat_key(name)]
        return int(await self._chat_post(keys=keys, args=[message_json or "", history_length]))

    async def room_forget(self, *, name: str, room_id: str) -> bool:
        keys = [*self._room_keys(name), self._chat_key(name), self._profiles_key(name), self._rooms_key()]
        return bool(await self._forget(keys=keys, args=[name, room_id]))

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

    async def process_heartbeat(self, process: str, now_ms: int) -> bool:
        added = await self._redis.zadd(self._key("processes"), {process: now_ms})
        return not added

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
