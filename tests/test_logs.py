"""ops.logs and conference_site.access_log: the context each line carries, both
formats, and query strings cut from every line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from conference_site.access_log import AccessLog
from ops.logs import (
    log_context,
    log_context_bind,
    log_context_clear,
    log_context_fields,
    log_context_scoped,
    logging_config,
    query_strings_redact,
)


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    """The console handler of ``settings.LOGGING`` writing to a buffer (either format)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    yield stream, handler
    logging.getLogger("test.logs").removeHandler(handler)


def logged_with(log_format: str, stream: io.StringIO, handler: logging.Handler) -> logging.Logger:
    config = logging_config(log_format, "INFO")
    assert config["handlers"]["console"]["formatter"] == log_format
    # The configured formatter and filter, on a handler of the test's own.
    formatter_factory = config["formatters"][log_format]["()"]
    handler.setFormatter(formatter_factory())
    handler.addFilter(config["filters"]["context"]["()"]())
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def test_json_lines_carry_the_context_they_were_logged_in(captured) -> None:  # type: ignore[no-untyped-def]
    stream, handler = captured
    logger = logged_with("json", stream, handler)
    with log_context(room="weekly", session="s1", identity="alice"):
        with log_context(stream="9d04e6b1a2c37f85", node=""):  # empty values are left out
            logger.info("inner %d", 1)
        logger.warning("outer")
    logger.info("outside")
    inner, outer, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inner["message"] == "inner 1" and inner["level"] == "INFO" and inner["logger"] == "test.logs"
    assert {key: inner[key] for key in ("room", "session", "identity", "stream")} == {
        "room": "weekly", "session": "s1", "identity": "alice", "stream": "9d04e6b1a2c37f85",
    }
    assert "node" not in inner and inner["timestamp"].endswith("+00:00")
    assert (outer["room"], outer["level"], "stream" in outer) == ("weekly", "WARNING", False)
    assert not {"room", "session", "identity", "stream", "node"} & outside.keys()


def test_plain_lines_end_with_the_context_and_keep_tracebacks_below(captured) -> None:  # type: ignore[no-untyped-def]
    stream, handler = captured
    logger = logged_with("plain", stream, handler)
    with log_context(room="weekly", identity="alice"):
        try:
            raise ValueError("broken")
        except ValueError:
            logger.exception("failed")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith(" ERROR test.logs failed room=weekly identity=alice"), first
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "ValueError: broken"


def test_query_strings_never_reach_a_line(captured) -> None:  # type: ignore[no-untyped-def]
    stream, handler = captured
    logger = logged_with("json", stream, handler)
    logger.info("GET %s", "/conference/?roomName=weekly&invite=SECRET")
    logger.info("posting to https://hooks.example.com/in?key=SECRET failed")
    logger.info("is it /records/ or not? %s", "yes")
    lines = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert lines == [
        "GET /conference/?REDACTED",
        "posting to https://hooks.example.com/in?REDACTED failed",
        "is it /records/ or not? yes",
    ]
    assert query_strings_redact('"GET /ws/rooms/?token=a.b.c HTTP/1.1"') == '"GET /ws/rooms/?REDACTED HTTP/1.1"'


def test_bind_lasts_to_the_end_of_the_task_and_tasks_do_not_share_it() -> None:
    async def connection(name: str) -> dict[str, str]:
        log_context_bind(session=f"s-{name}", identity=name)
        await asyncio.sleep(0)
        with log_context(room="weekly"):
            await asyncio.sleep(0)
            inside = dict(log_context_fields())
        assert dict(log_context_fields()) == {"session": f"s-{name}", "identity": name}
        return inside

    async def both() -> list[dict[str, str]]:
        return list(await asyncio.gather(connection("alice"), connection("bob")))

    alice, bob = asyncio.run(both())
    assert alice == {"session": "s-alice", "identity": "alice", "room": "weekly"}
    assert bob == {"session": "s-bob", "identity": "bob", "room": "weekly"}
    assert dict(log_context_fields()) == {}
    log_context_bind(room="left-over")
    log_context_clear()
    assert dict(log_context_fields()) == {}
    with pytest.raises(ValueError, match="not a log context field"):
        log_context_bind(user="alice")


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_the_access_log_cuts_queries_in_either_format(settings, log_format: str) -> None:  # type: ignore[no-untyped-def]
    settings.LOG_FORMAT = log_format
    stream = io.StringIO()
    access = AccessLog(stream)
    access("http", "complete", {
        "path": "/records/?access=SECRET", "status": 200, "method": "GET", "client": "127.0.0.1:5000",
        "time_taken": 0.01, "size": 512,
    })
    access("websocket", "connected", {"path": "/ws/rooms/?token=SECRET", "client": "127.0.0.1:5001"})
    text = stream.getvalue()
    assert "SECRET" not in text
    first, second = text.splitlines()
    if log_format == "plain":
        assert first.startswith("127.0.0.1:5000 - - [") and first.endswith('] "GET /records/?REDACTED" 200 512')
        assert second.endswith('"WSCONNECT /ws/rooms/?REDACTED" - -')
    else:
        page, socket = json.loads(first), json.loads(second)
        assert (page["logger"], page["level"], page["message"]) == ("daphne.access", "INFO", "GET /records/?REDACTED")
        assert (page["client"], page["status"], page["size"]) == ("127.0.0.1:5000", 200, 512)
        assert socket["message"] == "WSCONNECT /ws/rooms/?REDACTED" and socket["status"] is None


def test_a_scoped_service_keeps_what_it_binds_to_itself() -> None:
    @log_context_scoped
    def service(room: str) -> dict[str, str]:
        log_context_bind(room=room)
        return dict(log_context_fields())

    with log_context(session="s1"):
        assert service("weekly") == {"session": "s1", "room": "weekly"}
        assert dict(log_context_fields()) == {"session": "s1"}
    assert dict(log_context_fields()) == {}
