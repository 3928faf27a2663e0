"""Readiness: can this web process serve a meeting now?

Each check runs with its own deadline (``READYZ_CHECK_TIMEOUT_S``) and all
run at once, so a probe answers within one deadline whatever hangs: a
blackholed Redis, a database that stopped answering, a broker behind a
partition. A check answers ``None`` when all is well, else what is wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from django.conf import settings
from django.db import connection
from redis.asyncio import Redis

from rooms.database import db_call
from rooms.live.context import process_context
from rooms.media.timing import now_ms
from rooms.media_host import local_media_node
from rooms.runtime import ensure_started

Check = Callable[[], Awaitable[str | None]]


def _database_ping() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def database() -> str | None:
    await db_call(_database_ping)()
    return None


async def _redis_ping(url: str) -> None:
    # A connection of its own: the probe sees what a new client would, and
    # never waits behind the process's pool.
    timeout = settings.READYZ_CHECK_TIMEOUT_S
    client = Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def redis() -> str | None:
    await _redis_ping(settings.REDIS_URL)
    return None


async def live_state() -> str | None:
    """The process's heartbeat loop runs, and the live state took a beat recently."""
    runtime = await ensure_started()
    age = now_ms() - runtime.last_heartbeat_ms
    if age > settings.PRESENCE_TTL_MS:
        return "no heartbeat taken yet" if not runtime.last_heartbeat_ms else f"last heartbeat {age} ms ago"
    if not runtime.hears_events:
        return "events sent through the channel layer do not reach this process yet"
    return None


async def media_node() -> str | None:
    if settings.MEDIA_NODES == "embedded":
        await local_media_node()
    alive = await process_context().stream_registry.nodes_alive(alive_after_ms=now_ms() - settings.PRESENCE_TTL_MS)
    return None if alive else "no media node alive"


async def broker() -> str | None:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://", "unix://")):
        await _redis_ping(url)
        return None
    if url.startswith("filesystem"):
        folder = Path(settings.CELERY_BROKER_FOLDER)
        present = await asyncio.to_thread(folder.is_dir)
        return None if present else f"broker folder {folder} is missing"
    return await asyncio.to_thread(_kombu_connect, url)


def _kombu_connect(url: str) -> str | None:
    from kombu.connection import Connection

    with Connection(url, connect_timeout=settings.READYZ_CHECK_TIMEOUT_S) as broker_connection:  # type: ignore[no-untyped-call]
        broker_connection.ensure_connection(max_retries=1)
    return None


def checks() -> dict[str, Check]:
    found: dict[str, Check] = {"database": database}
    if settings.REDIS_URL:
        found["redis"] = redis
    found.update(live_state=live_state, media_node=media_node, broker=broker)
    return found


async def _run(check: Check) -> str | None:
    try:
        return await asyncio.wait_for(check(), settings.READYZ_CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {settings.READYZ_CHECK_TIMEOUT_S:g} s"
    except Exception as error:
        return f"{type(error).__name__}: {error}"[:200]


async def readiness() -> dict[str, str]:
    """Every check's outcome: ``ok`` or what failed."""
    found = checks()
    outcomes = await asyncio.gather(*(_run(check) for check in found.values()))
    return {name: outcome or "ok" for name, outcome in zip(found, outcomes, strict=True)}
