"""daphne's access log without query strings, in the ``LOG_FORMAT`` of every other line.

A query string carries secrets (an access token, an invitation, a records
grant), and daphne writes each request's full URI to its access log.
``AccessLog`` takes the place of daphne's ``AccessLogGenerator``: the same
lines to the same stream (standard output, or ``--access-log FILE``), with
every query cut to ``?REDACTED``; with ``LOG_FORMAT=json`` each line is a
JSON object like every other log line.

daphne has no setting for its access logger: its command line builds one
from ``daphne.cli.AccessLogGenerator`` right after it imported the
application, so ``conference_site.asgi`` puts this class there first
(``access_log_install``), and every daphne started with
``conference_site.asgi:application`` (the systemd units, ``manage.py serve``,
the tests) writes this log.
"""

from __future__ import annotations

import datetime
import logging
from typing import IO, Any

from daphne.access import AccessLogGenerator
from django.conf import settings

from ops.logs import json_formatter, query_strings_redact

LOGGER_NAME = "daphne.access"


class AccessLog(AccessLogGenerator):
    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self.json = json_formatter() if settings.LOG_FORMAT == "json" else None

    def __call__(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        path = details.get("path")
        if isinstance(path, str):
            details = {**details, "path": query_strings_redact(path)}
        super().__call__(protocol, action, details)

    def write_entry(
        self, host: str | None, date: datetime.datetime, request: str, status: int | None = None,
        length: int | None = None, ident: str | None = None, user: str | None = None,
    ) -> None:
        if self.json is None:
            super().write_entry(host, date, request, status, length, ident, user)
            return
        record = logging.LogRecord(LOGGER_NAME, logging.INFO, __file__, 0, request, None, None)
        record.client = host
        record.status = status
        record.size = length
        self.stream.write(self.json.format(record) + "\n")


def access_log_install() -> None:
    """Make the daphne command line write ``AccessLog`` (it reads the name after importing the app)."""
    import daphne.cli

    daphne.cli.AccessLogGenerator = AccessLog
