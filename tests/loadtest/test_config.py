"""The load test's arguments: server address, token key, video size."""

from __future__ import annotations

import pytest

from loadtest.config import ConfigError, origin_of, token_key, video_size, ws_url


def test_the_server_may_be_given_by_its_page_or_its_websocket() -> None:
    assert ws_url("http://127.0.0.1:8000/") == "ws://127.0.0.1:8000/ws/rooms/"
    assert ws_url("https://meet.example.com") == "wss://meet.example.com/ws/rooms/"
    assert ws_url("wss://meet.example.com/ws/rooms/") == "wss://meet.example.com/ws/rooms/"
    assert ws_url("ws://h:1/conf/ws/rooms") == "ws://h:1/conf/ws/rooms/"
    for wrong in ("127.0.0.1:8000", "ftp://h/", "http://"):
        with pytest.raises(ConfigError):
            ws_url(wrong)
    assert origin_of("wss://meet.example.com/ws/rooms/") == "https://meet.example.com"
    assert origin_of("ws://127.0.0.1:8000/ws/rooms/") == "http://127.0.0.1:8000"


def test_token_key() -> None:
    keys = {"main": "s1", "next": "s2"}
    assert token_key("", {}) == ("", "")  # open rooms
    assert token_key("", keys) == ("main", "s1")  # the server's own first key
    assert token_key("next", keys) == ("next", "s2")
    assert token_key("k:a:b", {}) == ("k", "a:b")
    for wrong in ("other", "k:", ":s"):
        with pytest.raises(ConfigError):
            token_key(wrong, keys)


def test_video_size() -> None:
    assert video_size("640x480") == (640, 480)
    for wrong in ("640", "641x480", "32x32", "3840x2160"):
        with pytest.raises(ConfigError):
            video_size(wrong)
