"""Start-up and ``check --deploy`` checks of who may use the server."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

# Shorter HS256 secrets can be brute-forced offline from one captured token.
MIN_SECRET_LENGTH = 32


def open_mode_refuse_unless_explicit() -> None:
    """A server started with DEBUG off runs without tokens only if told to
    (read from the environment itself: the setting has a default)."""
    if settings.ROOM_AUTH == "open" and not settings.DEBUG and not os.environ.get("ROOM_AUTH"):
        raise ImproperlyConfigured(
            "ROOM_AUTH is not set: set ROOM_AUTH=token (with API_KEYS) to require signed access tokens, "
            "or ROOM_AUTH=open to let anyone who reaches the server join any room"
        )


@register(Tags.security, deploy=True)
def room_auth_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    if settings.ROOM_AUTH == "open":
        problems.append(
            Warning(
                "ROOM_AUTH is open: anyone who reaches the server can join any room under any name, "
                "publish, play and record.",
                hint="Set ROOM_AUTH=token and API_KEYS, and give clients signed access tokens.",
                id="rooms.W001",
            )
        )
    short = sorted(key for key, secret in settings.API_KEYS.items() if len(secret) < MIN_SECRET_LENGTH)
    if short:
        problems.append(
            Warning(
                f"API_KEYS secrets shorter than {MIN_SECRET_LENGTH} characters: {', '.join(short)}.",
                hint="Use long random secrets, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'.",
                id="rooms.W002",
            )
        )
    if settings.ROOM_AUTH == "open" and settings.WHIP_TOKEN and len(settings.WHIP_TOKEN) < MIN_SECRET_LENGTH:
        # In open rooms it is the one key to publishing by WHIP.
        problems.append(
            Warning(
                f"WHIP_TOKEN is shorter than {MIN_SECRET_LENGTH} characters.",
                hint="Use a long random secret, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'.",
                id="rooms.W003",
            )
        )
    problems += _turn_problems()
    return problems


def _turn_problems() -> list[CheckMessage]:
    if settings.TURN_URLS and not settings.TURN_SHARED_SECRET:
        # Clients would get TURN URLs with no credentials: useless to them.
        return [
            Warning(
                "TURN_URLS is set without TURN_SHARED_SECRET: clients get no TURN server.",
                hint="Set TURN_SHARED_SECRET to the static-auth-secret of the TURN server (coturn).",
                id="rooms.W004",
            )
        ]
    if settings.TURN_URLS and len(settings.TURN_SHARED_SECRET) < MIN_SECRET_LENGTH:
        # Anyone may collect minted credentials and try the secret offline.
        return [
            Warning(
                f"TURN_SHARED_SECRET is shorter than {MIN_SECRET_LENGTH} characters.",
                hint="Use a long random secret in both places, e.g. python -c "
                "'import secrets; print(secrets.token_urlsafe(32))'.",
                id="rooms.W005",
            )
        ]
    return []
