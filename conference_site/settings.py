"""Settings, all read from the environment (django-environ).

With no environment at all this is the embedded default: SQLite, the
in-memory channel layer and live state, and a Celery broker on the local
filesystem. ``REDIS_URL`` and ``DATABASE_URL`` switch to Redis and
PostgreSQL for several processes and hosts.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ

from ops.logs import logging_config

# Lets admin classes be written generic (ModelAdmin[Room]) for the type checker.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost", "[::1]"]),
    CSRF_TRUSTED_ORIGINS=(list, []),
    HTTPS=(bool, False),
    REDIS_URL=(str, ""),
    ROOM_IDLE_TIMEOUT_MS=(int, 60_000),
    ROOM_MAX_PARTICIPANTS=(int, 16),
    ROOM_VIDEO_CODEC=(str, "VP8"),
    PRESENCE_TTL_MS=(int, 5_000),
    HEARTBEAT_INTERVAL_MS=(int, 1_000),
    SWEEP_INTERVAL_MS=(int, 1_000),
    CHAT_RATE_PER_SECOND=(float, 10.0),
    CHAT_RATE_BURST=(int, 20),
    CHAT_HISTORY_LENGTH=(int, 50),
    LIVE_STATE_PREFIX=(str, "conf"),
    RECORDING_EMPTY_SHIFT=(bool, False),
    ON_MULTIPLE_RECORD_HOOK=(str, ""),
    OFFLINE_MIXER_CONFIG=(str, ""),
    MEDIA_HOST_IP=(str, ""),
    ICE_SERVERS=(str, "[]"),
    LOG_LEVEL=(str, "INFO"),
)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one kept in VAR_DIR.

    A key generated once and stored keeps sessions valid across restarts of
    the embedded default without asking a newcomer to invent one.
    """
    if key := str(env.str("SECRET_KEY", default="")):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _ice_servers(raw: str) -> list[dict[str, Any]]:
    """ICE_SERVERS: a JSON list of RTCIceServer objects, checked at start-up."""
    from django.core.exceptions import ImproperlyConfigured

    try:
        servers = json.loads(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"ICE_SERVERS is not JSON: {error}") from None
    if not isinstance(servers, list) or not all(
        isinstance(server, dict) and isinstance(server.get("urls"), list | str) for server in servers
    ):
        raise ImproperlyConfigured('ICE_SERVERS must be a JSON list like [{"urls": ["stun:host:3478"]}]')
    return servers


SECRET_KEY = _secret_key()
DEBUG = env("DEBUG")
ALLOWED_HOSTS: list[str] = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS: list[str] = env("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    # Before the admin: its admin/index.html adds the live view's link to the admin's own.
    "console",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "audit",
    "ops",
    "rooms",
    "recording",
    "webhooks",
    "loadtest",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into the 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "conference_site.urls"
ASGI_APPLICATION = "conference_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
# Keep connections: opening one per query costs ~3 ms on PostgreSQL, ten
# times the query. Channels closes connections older than this itself.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=600))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads and processes write chat and membership history; WAL
    # plus a busy timeout keeps SQLite from failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Admin login is throttled by django-axes: its backend comes first and
# refuses a username from an address after LOGIN_FAILURE_LIMIT failures, for
# LOGIN_LOCKOUT_S seconds (conference_site.login_throttle). Username and address together, so that one
# attacker can neither lock an operator out from everywhere nor lock out every
# operator behind the same proxy. A success resets the count, so people (and
# tests) who mistype once and then log in start afresh. The address is
# REMOTE_ADDR (django-ipware is not installed): behind a proxy, daphne's
# --proxy-headers makes it the client's.
AUTHENTICATION_BACKENDS = [
    "conference_site.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT: int = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = datetime.timedelta(seconds=env.int("LOGIN_LOCKOUT_S", default=900))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Its start-up banner would open every manage.py command's output.
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve straight from the app and project folders so the embedded default
# needs no collectstatic step; production may still collect to STATIC_ROOT.
WHITENOISE_USE_FINDERS = True

# HTTPS hardening follows one switch: behind TLS set HTTPS=true.
HTTPS = env("HTTPS")
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Live state and the channel layer --------------------------------------
REDIS_URL: str = env("REDIS_URL")
LIVE_STATE_PREFIX: str = env("LIVE_STATE_PREFIX")


CHANNEL_LAYER: str = env.str("CHANNEL_LAYER", default="pubsub")
# Messages that may wait in this process for one consumer (a WebSocket
# connection, a media node) before its queue overflows: the waiting messages
# are dropped, counted and logged, and the connection closes (slow_consumer).
CHANNEL_QUEUE_MAX: int = env.int("CHANNEL_QUEUE_MAX", default=1000)


def redis_channel_layer(
    url: str, prefix: str, kind: str = "pubsub", queue_max: int = CHANNEL_QUEUE_MAX
) -> dict[str, object]:
    """The channel layer over Redis.

    ``pubsub`` (default): one PUBLISH per room event, fanned out inside each
    process. ``lists``: Channels' classic layer, one queued copy per member,
    each popped in its own round trip; it has per-channel capacity limits
    but costs far more per event (docs/PERFORMANCE.md).
    """
    # Reads wait on Redis longer than redis-py's default 5 s socket timeout,
    # which would end them with an error and close quiet WebSockets.
    # A connection Redis closed (a restart, a failover) is opened again once
    # for the command that meets it, instead of failing that command; a
    # timeout is not retried.
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    reconnect_once = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    hosts = [{"address": url, "socket_timeout": 15, "retry": reconnect_once}]
    if kind == "lists":
        return {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": hosts, "prefix": f"{prefix}:asgi", "capacity": queue_max, "expiry": 30},
        }
    if kind != "pubsub":
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"CHANNEL_LAYER must be pubsub or lists, not {kind!r}")
    return {
        # Bounded per-channel queues with a counted drop (rooms.channel_layers).
        "BACKEND": "rooms.channel_layers.BoundedPubSubChannelLayer",
        "CONFIG": {"hosts": hosts, "prefix": f"{prefix}:asgi", "capacity": queue_max},
    }


if REDIS_URL:
    CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL, LIVE_STATE_PREFIX, CHANNEL_LAYER)}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "rooms.channel_layers.BoundedInMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNEL_QUEUE_MAX},
        }
    }

# --- Rooms ------------------------------------------------------------------
ROOM_IDLE_TIMEOUT_MS: int = env("ROOM_IDLE_TIMEOUT_MS")
ROOM_MAX_PARTICIPANTS: int = env("ROOM_MAX_PARTICIPANTS")
ROOM_VIDEO_CODEC: str = env("ROOM_VIDEO_CODEC").upper()
PRESENCE_TTL_MS: int = env("PRESENCE_TTL_MS")
HEARTBEAT_INTERVAL_MS: int = env("HEARTBEAT_INTERVAL_MS")
SWEEP_INTERVAL_MS: int = env("SWEEP_INTERVAL_MS")
CHAT_RATE_PER_SECOND: float = env("CHAT_RATE_PER_SECOND")
CHAT_RATE_BURST: int = env("CHAT_RATE_BURST")
CHAT_HISTORY_LENGTH: int = env("CHAT_HISTORY_LENGTH")
# Bytes a WebSocket client may leave unread in the server's send buffer
# before it is disconnected (slow_consumer): bounds each connection's memory.
WS_SEND_BUFFER_MAX: int = env.int("WS_SEND_BUFFER_MAX", default=1024 * 1024)
# Quotas of one connection: rooms at once, joins per second (a token bucket
# with a burst), and peer connections (publishes and plays, asked for or live).
ROOMS_PER_CONNECTION: int = env.int("ROOMS_PER_CONNECTION", default=8)
JOINS_PER_SECOND: float = env.float("JOINS_PER_SECOND", default=2.0)
JOINS_BURST: int = env.int("JOINS_BURST", default=10)
PEER_CONNECTIONS_PER_SESSION: int = env.int("PEER_CONNECTIONS_PER_SESSION", default=24)
# Each published video stream is told (REMB, every second) to stay at or
# under this many kbit/s; 0: no cap.
ROOM_MAX_VIDEO_KBPS: int = env.int("ROOM_MAX_VIDEO_KBPS", default=2500)
# The subscribers' REMB estimates never ask a publisher for less than this
# many kbit/s; a subscriber whose link cannot carry it gets its video paused
# (stream.paused, reason bandwidth) until the link recovers. 0: off.
ROOM_MIN_VIDEO_KBPS: int = env.int("ROOM_MIN_VIDEO_KBPS", default=300)
# WebSocket connections one client address may hold open in one web process
# (0: no limit). Counted per process, not across the deployment.
CONNECTIONS_PER_IP: int = env.int("CONNECTIONS_PER_IP", default=50)
# Limits shared by a client's connections, kept in the live state (shared by
# every web process through Redis). Joins of one client address: generous,
# as an office behind one NAT address is many people (0: no limit).
JOINS_PER_IP_PER_SECOND: float = env.float("JOINS_PER_IP_PER_SECOND", default=20.0)
JOINS_PER_IP_BURST: int = env.int("JOINS_PER_IP_BURST", default=100)
# Chat of one identity (the login; a token's sub) across all its connections,
# so more sockets do not mean more messages. By default the rate of one
# connection (0: no limit).
CHAT_IDENTITY_RATE_PER_SECOND: float = env.float("CHAT_IDENTITY_RATE_PER_SECOND", default=CHAT_RATE_PER_SECOND)
CHAT_IDENTITY_RATE_BURST: int = env.int("CHAT_IDENTITY_RATE_BURST", default=CHAT_RATE_BURST)
# Live rooms on the whole server: a join that would create one more is
# refused; joins of existing rooms are not (0: no limit).
ROOMS_MAX: int = env.int("ROOMS_MAX", default=1000)
# Empty: gather ICE candidates on every address of the machine's interfaces
# (what a person on a laptop needs). One address: only that one; a loopback
# address also confines media to loopback (tests, benchmarks).
def _media_host_ip(raw: str, name: str = "MEDIA_HOST_IP") -> str:
    """MEDIA_HOST_IP (or MEDIA_PUBLIC_IP): empty, or one IP address."""
    import ipaddress

    from django.core.exceptions import ImproperlyConfigured

    if raw:
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be an IP address (or empty), not {raw!r}") from None
    return raw


MEDIA_HOST_IP: str = _media_host_ip(env("MEDIA_HOST_IP").strip())
# Behind a 1:1 NAT (a cloud VM with a private address and a public one
# mapped to it): the public address, advertised in the answers' candidates
# in place of the address the node gathers on (Janus' nat_1_1_mapping).
MEDIA_PUBLIC_IP: str = _media_host_ip(env.str("MEDIA_PUBLIC_IP", default="").strip(), "MEDIA_PUBLIC_IP")
# embedded: every web process runs a media node for the rooms pinned to it;
# external: only `manage.py runmedianode` processes do.
MEDIA_NODES: str = env.str("MEDIA_NODES", default="embedded")

def _port_range(raw: str) -> tuple[int, int] | None:
    """MEDIA_UDP_PORTS: "40000-40999", or empty for any free port."""
    if not raw:
        return None
    from django.core.exceptions import ImproperlyConfigured

    try:
        first, last = (int(part) for part in raw.split("-"))
    except ValueError:
        raise ImproperlyConfigured(f"MEDIA_UDP_PORTS must look like 40000-40999, not {raw!r}") from None
    if not 1024 <= first <= last <= 65535:
        raise ImproperlyConfigured(f"MEDIA_UDP_PORTS {raw!r} is not a range within 1024-65535")
    return first, last


MEDIA_UDP_PORTS: tuple[int, int] | None = _port_range(env.str("MEDIA_UDP_PORTS", default=""))
# A publish whose first media has not arrived by then is FAILED no_media.
MEDIA_START_TIMEOUT_MS: int = env.int("MEDIA_START_TIMEOUT_MS", default=10_000)
# How often a media node ranks its rooms' speakers by their audio levels;
# a room hears room.speakers at most this often, and only on change (0: never).
SPEAKERS_INTERVAL_MS: int = max(0, env.int("SPEAKERS_INTERVAL_MS", default=250))
# Where a media node sends ICE connectivity checks: at most this many
# distinct destinations per peer connection (the offer's candidates beyond
# it are dropped, checks from more sources go unanswered) ...
MEDIA_MAX_REMOTE_CANDIDATES: int = env.int("MEDIA_MAX_REMOTE_CANDIDATES", default=16)
if MEDIA_MAX_REMOTE_CANDIDATES < 1:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("MEDIA_MAX_REMOTE_CANDIDATES must be at least 1")


def _networks(raw: list[str]) -> list[str]:
    """MEDIA_DENIED_PEER_NETWORKS: comma-separated CIDRs (10.0.0.0/8,fd00::/8)."""
    import ipaddress

    from django.core.exceptions import ImproperlyConfigured

    networks = []
    for item in (part.strip() for part in raw):
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(f"MEDIA_DENIED_PEER_NETWORKS: {item!r} is not a network (CIDR)") from None
    return networks


# ... and never to these networks (an operator's internal ones).
MEDIA_DENIED_PEER_NETWORKS: list[str] = _networks(env.list("MEDIA_DENIED_PEER_NETWORKS", default=[]))
ICE_SERVERS: list[dict[str, Any]] = _ice_servers(env("ICE_SERVERS"))


def _turn_urls(raw: list[str]) -> list[str]:
    """TURN_URLS: comma-separated turn:/turns: URLs (turn:turn.example.com:3478?transport=udp)."""
    from django.core.exceptions import ImproperlyConfigured

    urls = [url.strip() for url in raw if url.strip()]
    for url in urls:
        if not url.startswith(("turn:", "turns:")):
            raise ImproperlyConfigured(f"TURN_URLS: {url!r} is not a turn: or turns: URL")
    return urls


# A TURN relay (coturn) whose credentials every session gets minted for it
# (rooms.turn): the relay's URLs, the secret it shares with this server
# (coturn's static-auth-secret), and how long each session's credentials hold.
TURN_URLS: list[str] = _turn_urls(env.list("TURN_URLS", default=[]))
TURN_SHARED_SECRET: str = env.str("TURN_SHARED_SECRET", default="")
TURN_CREDENTIAL_TTL_S: int = env.int("TURN_CREDENTIAL_TTL_S", default=86_400)
if TURN_CREDENTIAL_TTL_S < 1:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("TURN_CREDENTIAL_TTL_S must be at least 1")

# --- Who may do what ----------------------------------------------------------


def _room_auth(raw: str) -> str:
    """ROOM_AUTH: open (a token is optional) or token (every session needs one)."""
    from django.core.exceptions import ImproperlyConfigured

    if raw not in ("open", "token"):
        raise ImproperlyConfigured(f"ROOM_AUTH must be open or token, not {raw!r}")
    return raw


def _api_keys(raw: str) -> dict[str, str]:
    """API_KEYS: "key:secret,key2:secret2" -> {key: secret}."""
    from django.core.exceptions import ImproperlyConfigured

    keys: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        key, separator, secret = entry.partition(":")
        if not separator or not key or not secret:
            raise ImproperlyConfigured("API_KEYS must look like key:secret,key2:secret2")
        if key in keys:
            raise ImproperlyConfigured(f"API_KEYS names the key {key!r} twice")
        keys[key] = secret
    return keys


# A server on the internet must say ROOM_AUTH=open out loud to run without
# tokens: conference_site.asgi refuses to start otherwise unless DEBUG is on
# (rooms.checks).
ROOM_AUTH: str = _room_auth(env.str("ROOM_AUTH", default="open").strip())
API_KEYS: dict[str, str] = _api_keys(env.str("API_KEYS", default=""))
if ROOM_AUTH == "token" and not API_KEYS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("ROOM_AUTH=token needs API_KEYS (key:secret,...) to verify tokens with")

# WHIP and WHEP (rooms.whip): in open rooms their bearer token is this shared
# secret, and without it they are off; with ROOM_AUTH=token it is an access
# token. Browser WHIP clients on other origins are let in by CORS from these
# origins ("*": any; the bearer, never a cookie, is what admits a request).
WHIP_TOKEN: str = env.str("WHIP_TOKEN", default="")
WHIP_CORS_ORIGINS: list[str] = env.list("WHIP_CORS_ORIGINS", default=["*"])

# Tokens the pages get from /api/token: how long each lives (the pages
# fetch a fresh one before it expires), and how long an invite link admits
# guests unless its maker chose less.
PAGE_TOKEN_TTL_S: int = env.int("PAGE_TOKEN_TTL_S", default=3600)
INVITE_MAX_AGE_S: int = env.int("INVITE_MAX_AGE_S", default=24 * 3600)
# People who are not operators log in here to get tokens for the pages.
LOGIN_URL = "rooms:login"
LOGIN_REDIRECT_URL = "rooms:landing"
LOGOUT_REDIRECT_URL = "rooms:landing"

# --- Recording --------------------------------------------------------------
RECORDINGS_ROOT = Path(env.str("RECORDINGS_ROOT", default=str(VAR_DIR / "recordings")))
RECORDING_EMPTY_SHIFT: bool = env("RECORDING_EMPTY_SHIFT")
# Total bytes of records kept on disk (0: no limit): a record that would
# start past it is refused. A record is not cut when the total passes it.
RECORDINGS_MAX_BYTES: int = env.int("RECORDINGS_MAX_BYTES", default=0)
# Free space the recordings filesystem keeps: a record does not start below
# it, and a running one stops (its file closed and playable) on reaching it.
RECORDINGS_MIN_FREE_MB: int = env.int("RECORDINGS_MIN_FREE_MB", default=500)
# Finalized rooms older than this many days lose their history rows (room,
# participants, streams, chat); records older than RECORDINGS_RETENTION_DAYS
# lose their files and rows. 0: keep forever.
ROOM_HISTORY_RETENTION_DAYS: int = env.int("ROOM_HISTORY_RETENTION_DAYS", default=0)
RECORDINGS_RETENTION_DAYS: int = env.int("RECORDINGS_RETENTION_DAYS", default=0)
# Chat messages older than this many days (since sent) are deleted from
# every room, its archive and search with them. 0: keep forever.
CHAT_RETENTION_DAYS: int = env.int("CHAT_RETENTION_DAYS", default=0)
# A room recording still RECORDING this long after its room ended, PENDING_MIX
# this long, or MIXING without a word from its worker this long is stale: the
# admin says why, and Celery beat queues its work again.
RECORDING_STALE_AFTER_S: int = env.int("RECORDING_STALE_AFTER_S", default=600)
RECORDING_SWEEP_INTERVAL_S: float = env.float("RECORDING_SWEEP_INTERVAL_S", default=60.0)
ON_MULTIPLE_RECORD_HOOK: str = env("ON_MULTIPLE_RECORD_HOOK")
ON_MULTIPLE_RECORD_HOOK_TIMEOUT_S: int = env.int("ON_MULTIPLE_RECORD_HOOK_TIMEOUT_S", default=600)
OFFLINE_MIXER_CONFIG: str = env("OFFLINE_MIXER_CONFIG")
# How long a room's records links stay valid after the room is finalized
# (seven days); a link of a room still open is valid.
RECORDS_LINK_MAX_AGE_S: int = env.int("RECORDS_LINK_MAX_AGE_S", default=7 * 24 * 3600)
# Behind nginx: downloads are answered with X-Accel-Redirect to this internal
# location (mapped to RECORDINGS_ROOT) and nginx sends the file.
RECORDS_ACCEL_REDIRECT: str = env.str("RECORDS_ACCEL_REDIRECT", default="")

# --- Webhooks ---------------------------------------------------------------


def _webhook_urls(raw: str) -> list[str]:
    """WEBHOOK_URLS: comma-separated http(s) URLs, each with a host; empty turns webhooks off."""
    from urllib.parse import urlsplit

    from django.core.exceptions import ImproperlyConfigured

    urls = [url for url in (part.strip() for part in raw.split(",")) if url]
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImproperlyConfigured(f"WEBHOOK_URLS: {url!r} is not an http:// or https:// URL")
    if len(set(urls)) != len(urls):
        raise ImproperlyConfigured("WEBHOOK_URLS names a URL twice")
    return urls


def _webhook_secret(raw: str, secret_key: str) -> str:
    """WEBHOOK_SECRET: a Standard Webhooks secret, whsec_ and 24 to 64 bytes in base64.

    Empty: one derived from SECRET_KEY (HMAC-SHA256 with a label of its own,
    so it reveals nothing of the key), stable for as long as the key is;
    ``manage.py webhook_secret`` prints it for the receiving application.
    """
    import base64
    import binascii
    import hashlib
    import hmac

    from django.core.exceptions import ImproperlyConfigured

    if not raw:
        derived = hmac.new(secret_key.encode(), b"conference webhooks signing secret", hashlib.sha256).digest()
        return "whsec_" + base64.b64encode(derived).decode()
    encoded = raw.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        key = b""
    if not raw.startswith("whsec_") or not 24 <= len(key) <= 64:
        raise ImproperlyConfigured("WEBHOOK_SECRET must be whsec_ followed by 24 to 64 bytes in base64")
    return raw


WEBHOOK_URLS: list[str] = _webhook_urls(env.str("WEBHOOK_URLS", default=""))
WEBHOOK_SECRET: str = _webhook_secret(env.str("WEBHOOK_SECRET", default="").strip(), SECRET_KEY)
# One delivery attempt may take this long to connect, send and hear a status.
WEBHOOK_TIMEOUT_S: float = env.float("WEBHOOK_TIMEOUT_S", default=5.0)
# Retries wait this long after the first failed attempt, twice as long after
# each next one (at most an hour), for WEBHOOK_RETRY_FOR_S after the event.
WEBHOOK_RETRY_BASE_S: float = env.float("WEBHOOK_RETRY_BASE_S", default=5.0)
WEBHOOK_RETRY_FOR_S: int = env.int("WEBHOOK_RETRY_FOR_S", default=24 * 3600)
# Celery beat looks this often for deliveries whose retry was lost (a worker
# that died), and forgets delivered ones older than WEBHOOK_LOG_KEEP_DAYS.
WEBHOOK_SWEEP_INTERVAL_S: float = env.float("WEBHOOK_SWEEP_INTERVAL_S", default=30.0)
WEBHOOK_LOG_KEEP_DAYS: int = env.int("WEBHOOK_LOG_KEEP_DAYS", default=30)

# --- Health and metrics -------------------------------------------------------
# prometheus-client reads the directory when first imported (ops.metrics):
# set here, before any app module loads. Every process of one server (daphne,
# runmedianode, Celery) must share it; /metrics sums their files.
PROMETHEUS_MULTIPROC_DIR = Path(
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus"))
)
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
# /metrics answers a bearer METRICS_TOKEN, or addresses in METRICS_ALLOW
# (addresses or networks; default loopback only).
METRICS_TOKEN: str = env.str("METRICS_TOKEN", default="")
METRICS_ALLOW: list[str] = env.list("METRICS_ALLOW", default=["127.0.0.0/8", "::1"])
# Each readiness check (database, Redis, broker, media node) gives up after this.
READYZ_CHECK_TIMEOUT_S: float = env.float("READYZ_CHECK_TIMEOUT_S", default=2.0)
# Probes are answered over plain HTTP too (nginx, kubelet and systemd probe inside).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

# --- Celery -----------------------------------------------------------------
# Without Redis the embedded default uses kombu's filesystem transport: a
# broker that needs no server, shared by daphne and the worker via one folder.
CELERY_BROKER_URL: str = env.str(
    "CELERY_BROKER_URL", default=REDIS_URL or "filesystem://"
)
CELERY_BROKER_FOLDER = VAR_DIR / "celery-broker"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(CELERY_BROKER_FOLDER),
        "data_folder_out": str(CELERY_BROKER_FOLDER),
        "processed_folder": str(CELERY_BROKER_FOLDER / "processed"),
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    # On Redis the queues live under the deployment's prefix, like the live
    # state, so deployments (and test runs) sharing one Redis stay apart.
    else {"global_keyprefix": f"{LIVE_STATE_PREFIX}:celery:"}
    if CELERY_BROKER_URL.startswith("redis")
    else {}
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = (
    {
        # Every web process sweeps too; beat makes sure rooms finalize even
        # when no web process is left running.
        "sweep-rooms": {
            "task": "rooms.tasks.sweep_rooms",
            "schedule": SWEEP_INTERVAL_MS / 1000,
            "options": {"expires": SWEEP_INTERVAL_MS / 1000},
        }
    }
    if REDIS_URL
    else {}
)
# Stale recordings are queued again; each of these messages expires at the
# next sweep, so a stopped worker comes back to a backlog of one per row.
CELERY_BEAT_SCHEDULE["recordings-sweep"] = {
    "task": "recording.tasks.recordings_sweep",
    "schedule": RECORDING_SWEEP_INTERVAL_S,
    "options": {"expires": RECORDING_SWEEP_INTERVAL_S},
}
# Retention (ROOM_HISTORY_RETENTION_DAYS, RECORDINGS_RETENTION_DAYS): each
# run deletes what has expired since the last; with 0 days it does nothing.
RETENTION_INTERVAL_S: int = env.int("RETENTION_INTERVAL_S", default=3600)
CELERY_BEAT_SCHEDULE["recordings-retention"] = {
    "task": "recording.tasks.recordings_retention",
    "schedule": RETENTION_INTERVAL_S,
    "options": {"expires": RETENTION_INTERVAL_S},
}
CELERY_BEAT_SCHEDULE["rooms-history-retention"] = {
    "task": "rooms.tasks.rooms_history_retention",
    "schedule": RETENTION_INTERVAL_S,
    "options": {"expires": RETENTION_INTERVAL_S},
}
CELERY_BEAT_SCHEDULE["chat-retention"] = {
    "task": "rooms.tasks.chat_retention",
    "schedule": RETENTION_INTERVAL_S,
    "options": {"expires": RETENTION_INTERVAL_S},
}
if WEBHOOK_URLS:
    CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {
        "task": "webhooks.tasks.webhooks_sweep",
        "schedule": WEBHOOK_SWEEP_INTERVAL_S,
        "options": {"expires": WEBHOOK_SWEEP_INTERVAL_S},
    }

# plain: text lines; json: one JSON object a line (ops.logs). Both carry the
# room, session, identity, stream and node a line is about, and no query string.
LOG_FORMAT: str = env.str("LOG_FORMAT", default="plain").strip().lower()
LOGGING = logging_config(LOG_FORMAT, env("LOG_LEVEL"))
