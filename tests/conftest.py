"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os

import pytest

# Tests must never reach a public STUN server or a developer's own Redis
# data: everything runs on loopback with a prefix of its own.
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
# One directory per pytest-xdist worker: the SQLite file, records, metrics
# files and the embedded broker's folder are never shared between workers.
os.environ.setdefault(
    "VAR_DIR",
    os.path.join(os.path.dirname(__file__), "..", "var", "test", os.environ.get("PYTEST_XDIST_WORKER", "main")),
)
# The product gathers ICE candidates on every interface address; tests keep
# all media on loopback (the server processes they start inherit this).
# The everyday default is tested inside network namespaces (tests/e2e/test_lan.py).
os.environ["MEDIA_HOST_IP"] = "127.0.0.1"
# Servers the tests start run open unless a test asks for tokens, as the
# embedded default (manage.py serve) does.
os.environ.setdefault("ROOM_AUTH", "open")

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


# Fixtures through which a test reaches the database or the servers' backends.
BACKEND_FIXTURES = frozenset({
    "db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback", "live_server",
    "admin_user", "admin_client", "django_user_model", "integration_database", "server_env",
})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend-dependent-only", action="store_true",
        help="run only the tests that touch the database or start servers (the second, PostgreSQL pass)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --backend-dependent-only, leave out tests whose outcome cannot depend on the database.

    The suite runs twice, on SQLite and on PostgreSQL; a test of pure code
    (a parser, a formatter, a media packetizer) has nothing to learn from
    the second run.
    """
    if not config.getoption("--backend-dependent-only"):
        return
    kept: list[pytest.Item] = []
    left: list[pytest.Item] = []
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        dependent = (
            item.get_closest_marker("integration") is not None
            or item.get_closest_marker("django_db") is not None
            or bool(fixtures & BACKEND_FIXTURES)
        )
        (kept if dependent else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def _delete_redis_keys(prefix: str) -> None:
    from tests.processes import redis_keys_delete

    redis_keys_delete(TEST_REDIS_URL, prefix)


@pytest.fixture(autouse=True)
def _fresh_memory_state() -> None:
    from rooms.live.context import process_contexts_reset

    process_contexts_reset()


@pytest.fixture
def redis_live_state(settings):  # type: ignore[no-untyped-def]
    """Switch live state and channel layer to real Redis under a fresh prefix."""
    import uuid


    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.REDIS_URL = TEST_REDIS_URL
    settings.LIVE_STATE_PREFIX = prefix
    from conference_site.settings import redis_channel_layer

    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(TEST_REDIS_URL, prefix)}
    yield prefix
    _delete_redis_keys(prefix)


@pytest.fixture(scope="session")
def integration_database():  # type: ignore[no-untyped-def]
    """A freshly migrated PostgreSQL database for server processes."""
    import psycopg

    from tests.processes import manage

    # One database per test run, so runs side by side never drop each other's.
    name = f"conference_integration_{os.getpid()}"
    with psycopg.connect(TEST_POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    url = TEST_POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    manage({**os.environ, "DATABASE_URL": url}, "migrate", "--noinput")
    yield url
    with psycopg.connect(TEST_POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def server_env(integration_database: str, tmp_path):  # type: ignore[no-untyped-def]
    """Environment for server processes sharing one Redis prefix and PostgreSQL."""
    import uuid


    prefix = f"it-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DATABASE_URL": integration_database,
        "REDIS_URL": TEST_REDIS_URL,
        "LIVE_STATE_PREFIX": prefix,
        "VAR_DIR": str(tmp_path / "var"),
        # The test's processes count into their own files (the pytest process set one of its own).
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "var" / "prometheus"),
        "ROOM_IDLE_TIMEOUT_MS": "2000",
        "PRESENCE_TTL_MS": "1500",
        "HEARTBEAT_INTERVAL_MS": "250",
        "SWEEP_INTERVAL_MS": "500",
        "CHAT_RATE_BURST": "1000",
        "CHAT_RATE_PER_SECOND": "1000",
        "CHAT_IDENTITY_RATE_BURST": "1000",
        "CHAT_IDENTITY_RATE_PER_SECOND": "1000",
        # Tests join and leave rooms in tight loops on one connection, and
        # every test connects from 127.0.0.1; the join rates have their own tests.
        "JOINS_BURST": "1000",
        "JOINS_PER_IP_PER_SECOND": "0",
        "PYTHONUNBUFFERED": "1",
    }
    yield env
    _delete_redis_keys(prefix)


@pytest.fixture
def own_redis(tmp_path):  # type: ignore[no-untyped-def]
    """A redis-server of the test's own on a free port, without persistence, to flush or restart."""
    from tests import processes

    server = processes.RedisServer(processes.free_port(), tmp_path).start()
    yield server
    server.kill()


@pytest.fixture
def start_server(server_env, tmp_path):  # type: ignore[no-untyped-def]
    """Start named server processes; all are stopped when the test ends."""
    from tests import processes

    started: list[processes.ServerProcess] = []

    def start(kind: str, name: str, **options: object) -> processes.ServerProcess:
        env = {**server_env, **{k: str(v) for k, v in options.pop("env", {}).items()}}  # type: ignore[attr-defined]
        factories = {"daphne": processes.daphne, "celery": processes.celery_worker, "medianode": processes.media_node,
                     "beat": processes.celery_beat}
        factory = factories[kind]
        server = factory(name, env, tmp_path, **options)  # type: ignore[operator]
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def _no_public_stun(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Safety net: no peer connection in a test may ask a public STUN server."""
    from aiortc.rtcicetransport import RTCIceGatherer

    monkeypatch.setattr(RTCIceGatherer, "getDefaultIceServers", classmethod(lambda cls: []))


@pytest.fixture(scope="module")
def playwright():  # type: ignore[no-untyped-def]
    """Playwright for one test module at a time.

    pytest-playwright's own lives for the whole session, and the event loop
    its sync API keeps running breaks every asyncio test that comes after.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as started:
        yield started
