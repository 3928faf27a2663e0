"""Log lines that say whom they are about: the context fields and the formats.

Code acting for a room, a session, a stream or a media node puts those in
the log context (a ``ContextVar``, so each WebSocket connection's task, each
media command's task and each Celery task has its own), and every line
logged meanwhile carries them: ``room``, ``session``, ``identity``,
``stream``, ``node``. ``LOG_FORMAT`` picks how lines are written (settings
build ``LOGGING`` from ``logging_config``): ``plain`` text with the context
at the end, or ``json``, one object a line (python-json-logger).

Query strings never reach a line: they carry tokens, invitations and
records grants, so any ``/path?query`` in a message is cut to ``/path?REDACTED``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar

from pythonjsonlogger.json import JsonFormatter

FIELDS = ("room", "session", "identity", "stream", "node")
FORMATS = ("plain", "json")
REDACTED = "REDACTED"

_P = ParamSpec("_P")
_R = TypeVar("_R")

_EMPTY: Mapping[str, str] = MappingProxyType({})
# Read-only mappings, replaced whole: a copied context (a task started
# from here) never sees a later change made elsewhere.
_context: ContextVar[Mapping[str, str]] = ContextVar("log_context", default=_EMPTY)

# A URL path followed by its query, up to whitespace or a quote: what an
# access line, a request line or a logged URL holds.
_QUERY = re.compile(r"(?P<path>/[^\s?\"'#]*)\?[^\s\"'#]+")


def _merged(fields: Mapping[str, object]) -> Mapping[str, str]:
    current = dict(_context.get())
    for name, value in fields.items():
        if name not in FIELDS:
            raise ValueError(f"{name} is not a log context field ({', '.join(FIELDS)})")
        if value:
            current[name] = str(value)
    return MappingProxyType(current)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Lines logged inside the block carry ``fields`` (empty values are left out)."""
    token = _context.set(_merged(fields))
    try:
        yield
    finally:
        _context.reset(token)


def log_context_bind(**fields: object) -> None:
    """Lines logged from here to the end of the current task (or connection) carry ``fields``."""
    _context.set(_merged(fields))


def log_context_scoped(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """What ``function`` binds lasts until it returns.

    For synchronous services: their caller may be a thread whose context
    lives on (a test, a management command, or a coroutine that
    ``async_to_sync`` copies the context back from), and a room bound
    there would be stamped on every later line of that thread.
    """

    @functools.wraps(function)
    def scoped(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        token = _context.set(_context.get())
        try:
            return function(*args, **kwargs)
        finally:
            _context.reset(token)

    return scoped


def log_context_clear() -> None:
    """Forget the context: a worker starting its next task acts for nobody yet."""
    _context.set(_EMPTY)


def log_context_fields() -> Mapping[str, str]:
    return _context.get()


def query_strings_redact(text: str) -> str:
    """``text`` with every ``/path?query`` cut to ``/path?REDACTED``."""
    return _QUERY.sub(lambda match: f"{match['path']}?{REDACTED}", text) if "?" in text else text


class ContextFilter(logging.Filter):
    """Puts the log context's fields on every record a handler writes, and
    redacts query strings from its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        if "?" in str(record.msg) or record.args:
            try:
                message = record.getMessage()
            except Exception:
                return True  # logging reports the broken arguments itself
            redacted = query_strings_redact(message)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


class PlainFormatter(logging.Formatter):
    """``2026-12-05 08:40:01,123 INFO rooms.services joined room=weekly session=… identity=alice``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, None))
        if not context:
            return line
        # After the message's first line, so a traceback stays below it.
        first, newline, rest = line.partition("\n")
        return f"{first} {context}{newline}{rest}"


def json_formatter() -> JsonFormatter:
    """One JSON object a line: timestamp (UTC, ISO 8601), level, logger, message, then the context and extras."""
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
        json_ensure_ascii=False,
    )


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """``settings.LOGGING``: every process's lines to stderr in ``log_format``."""
    if log_format not in FORMATS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be {' or '.join(FORMATS)}, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"plain": {"()": PlainFormatter}, "json": {"()": json_formatter}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "daphne": {"level": "WARNING"},
            "django.channels.server": {"level": "WARNING"},
        },
    }
