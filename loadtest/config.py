"""What a load test runs and what it must meet: the command's arguments."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_SIZE_RE = re.compile(r"(\d+)x(\d+)")


class ConfigError(ValueError):
    """An argument that cannot be used, said in words."""


@dataclass(frozen=True)
class Thresholds:
    """Beyond these the run fails (exit status 1)."""

    max_errors: int = 0
    # Percent of chat deliveries (a message to one recipient) that never came.
    max_chat_loss: float = 0.0
    # Percent of video frames a subscriber's stream skipped.
    max_video_loss: float = 1.0
    # A subscription's frames per second over the measured window; None: the
    # publishers' rate less a fifth.
    min_fps: float | None = None


@dataclass(frozen=True)
class LoadConfig:
    url: str
    origin: str
    rooms: int
    publishers: int
    subscribers: int
    chat_rate: float
    duration_s: float
    width: int = 320
    height: int = 240
    fps: int = 15
    audio: bool = True
    token_key: str = ""
    token_secret: str = ""
    media_ip: str = ""
    room_prefix: str = "loadtest"
    join_rate: float = 10.0
    setup_timeout_s: float = 30.0
    warmup_s: float = 2.0
    thresholds: Thresholds = Thresholds()

    @property
    def participants(self) -> int:
        return self.rooms * (self.publishers + self.subscribers)

    @property
    def subscriptions(self) -> int:
        return self.rooms * self.subscribers * self.publishers

    @property
    def min_fps(self) -> float:
        given = self.thresholds.min_fps
        return self.fps * 0.8 if given is None else given

    @property
    def token_mode(self) -> bool:
        return bool(self.token_key)


def ws_url(url: str) -> str:
    """The WebSocket URL of a server given as ``ws(s)://…/ws/rooms/`` or as its ``http(s)://`` address."""
    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ConfigError(f"URL must be http(s)://host[:port]/ or ws(s)://host[:port]/ws/rooms/, not {url!r}")
    path = parts.path.rstrip("/")
    path = (path if path.endswith("/ws/rooms") else path + "/ws/rooms") + "/"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def origin_of(url: str) -> str:
    """The page origin a browser on that server would send (the server checks it against ALLOWED_HOSTS)."""
    parts = urlsplit(url)
    return f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"


def video_size(text: str) -> tuple[int, int]:
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise ConfigError(f"--video-size must look like 640x480, not {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if width < 64 or height < 64 or width % 2 or height % 2 or width * height > 1920 * 1080:
        raise ConfigError(f"--video-size must be even, from 64x64 to 1920x1080 pixels, not {text!r}")
    return width, height


def token_key(text: str, api_keys: dict[str, str]) -> tuple[str, str]:
    """``key:secret``, or a key of the ``API_KEYS`` setting, or empty (open rooms) -> (key, secret)."""
    text = text.strip()
    if not text:
        return ("", "") if not api_keys else next(iter(api_keys.items()))
    key, colon, secret = text.partition(":")
    if colon:
        if not key or not secret:
            raise ConfigError("--token-key must look like key:secret (or name a key of API_KEYS)")
        return key, secret
    if key not in api_keys:
        raise ConfigError(f"--token-key {key!r} is not a key of API_KEYS; give it as key:secret")
    return key, api_keys[key]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="the server: http(s)://host:port/ or ws(s)://host:port/ws/rooms/")
    parser.add_argument("--rooms", type=int, default=1, help="rooms to fill (default 1)")
    parser.add_argument("--publishers", type=int, default=1, help="publishers per room (default 1)")
    parser.add_argument("--subscribers", type=int, default=2, help="subscribers per room, each plays every "
                        "publisher of its room (default 2)")
    parser.add_argument("--chat-rate", type=float, default=1.0, help="chat messages per second in each room, "
                        "sent in turn by its participants (default 1; 0: no chat)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured once everyone is in "
                        "and playing (default 30)")
    parser.add_argument("--video-size", default="320x240", help="published video, WIDTHxHEIGHT (default 320x240)")
    parser.add_argument("--fps", type=int, default=15, help="published frames per second (default 15)")
    parser.add_argument("--no-audio", action="store_true", help="publish video only")
    parser.add_argument("--token-key", default="", help="key:secret (or a key of API_KEYS) to sign access "
                        "tokens for the participants; default: the first of API_KEYS if set, else open rooms")
    parser.add_argument("--origin", default="", help="Origin header (default: the server's own address)")
    parser.add_argument("--media-ip", default=None, help="the client's ICE address (default: MEDIA_HOST_IP; "
                        "empty: every interface)")
    parser.add_argument("--room-prefix", default="loadtest", help="room names start with it (default loadtest)")
    parser.add_argument("--join-rate", type=float, default=10.0, help="participants started per second "
                        "(default 10; the server allows 20 joins a second from one address)")
    parser.add_argument("--setup-timeout", type=float, default=30.0, help="seconds to get everyone joined, "
                        "publishing and playing (default 30)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds between the last first frame and "
                        "the measured window, for every stream to settle (default 2)")
    parser.add_argument("--max-errors", type=int, default=0, help="server errors allowed (default 0)")
    parser.add_argument("--max-chat-loss", type=float, default=0.0, help="percent of chat deliveries that "
                        "may be lost (default 0)")
    parser.add_argument("--max-video-loss", type=float, default=1.0, help="percent of video frames a "
                        "subscription may miss (default 1)")
    parser.add_argument("--min-fps", type=float, default=None, help="frames per second every subscription "
                        "must get (default: 80%% of --fps)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")


def from_options(options: dict[str, Any], *, api_keys: dict[str, str], media_host_ip: str) -> LoadConfig:
    url = ws_url(options["url"])
    for name in ("rooms", "publishers"):
        if options[name] < 1:
            raise ConfigError(f"--{name} must be at least 1")
    if options["subscribers"] < 0 or options["chat_rate"] < 0:
        raise ConfigError("--subscribers and --chat-rate must not be negative")
    if options["duration"] <= 0 or options["join_rate"] <= 0 or options["setup_timeout"] <= 0:
        raise ConfigError("--duration, --join-rate and --setup-timeout must be positive")
    if options["warmup"] < 0:
        raise ConfigError("--warmup must not be negative")
    if not 1 <= options["fps"] <= 60:
        raise ConfigError("--fps must be 1 to 60")
    width, height = video_size(options["video_size"])
    key, secret = token_key(options["token_key"], api_keys)
    media_ip = media_host_ip if options["media_ip"] is None else options["media_ip"]
    return LoadConfig(
        url=url,
        origin=options["origin"] or origin_of(url),
        rooms=options["rooms"],
        publishers=options["publishers"],
        subscribers=options["subscribers"],
        chat_rate=options["chat_rate"],
        duration_s=options["duration"],
        width=width,
        height=height,
        fps=options["fps"],
        audio=not options["no_audio"],
        token_key=key,
        token_secret=secret,
        media_ip=media_ip,
        room_prefix=options["room_prefix"],
        join_rate=options["join_rate"],
        setup_timeout_s=options["setup_timeout"],
        warmup_s=options["warmup"],
        thresholds=Thresholds(
            max_errors=options["max_errors"],
            max_chat_loss=options["max_chat_loss"],
            max_video_loss=options["max_video_loss"],
            min_fps=options["min_fps"],
        ),
    )
