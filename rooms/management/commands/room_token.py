"""``manage.py room_token``: print a signed access token for one room."""

from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rooms.access_tokens import GRANT_NAMES, SOURCES, TokenError, grants_from_names, token_mint

_DURATION_RE = re.compile(r"(\d+)([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``6h``, ``2d`` -> seconds."""
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise CommandError(f"--ttl must look like 90s, 15m, 6h or 2d, not {text!r}")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


class Command(BaseCommand):
    help = "Print a signed access token (JWT) that lets one identity join one room with the named grants."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--identity", required=True, help="the login the token holder gets")
        parser.add_argument("--room", required=True, help="the room the token may join")
        parser.add_argument(
            "--grant", default="publish,subscribe,chat",
            help=f"comma-separated, of: {', '.join(GRANT_NAMES)} (default publish,subscribe,chat)",
        )
        parser.add_argument("--sources", default="", help=f"limit publishing to these sources: {', '.join(SOURCES)}")
        parser.add_argument("--ttl", default="6h", help="lifetime, e.g. 15m, 6h, 2d (default 6h)")
        parser.add_argument("--name", default="", help="display name shown to others")
        parser.add_argument("--metadata", default="", help="a string shown to others (often JSON)")
        parser.add_argument("--api-key", default=None, help="sign with this key of API_KEYS (default: the first)")

    def handle(self, *args: Any, **options: Any) -> None:
        names = [name.strip() for name in options["grant"].split(",") if name.strip()]
        sources = [source.strip() for source in options["sources"].split(",") if source.strip()]
        try:
            grants = grants_from_names(names, room=options["room"], sources=sources)
            token = token_mint(
                identity=options["identity"], grants=grants, ttl_s=duration_seconds(options["ttl"]),
                name=options["name"], metadata=options["metadata"], api_key=options["api_key"],
            )
        except (ValueError, TokenError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(token)
