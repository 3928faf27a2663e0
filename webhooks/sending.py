"""One signed POST of a webhook, per the Standard Webhooks specification.

``http.client`` rather than a higher-level client: the headers go out
exactly as the specification spells them, a redirect is an answer (not
followed: the body would be re-sent somewhere nobody configured), and no
proxy from the environment is picked up on the way.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from standardwebhooks import Webhook

# Of an answer that is not 2xx, this much of the body is kept as the error.
ERROR_BODY_KEPT = 500


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signed_headers(*, secret: str, webhook_id: str, body: bytes, sent_at: datetime.datetime) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, sent_at, body),
    }


def webhook_post(*, url: str, webhook_id: str, payload: str, secret: str, timeout_s: float) -> Attempt:
    """POST ``payload`` to ``url``, signed now; any 2xx answer is a delivery."""
    body = payload.encode()
    # Whole seconds: the signed timestamp and the header must be the same number.
    sent_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    headers = {
        **signed_headers(secret=secret, webhook_id=webhook_id, body=body, sent_at=sent_at),
        "user-agent": "conference-server-webhooks",
    }
    parts = urlsplit(url)
    if parts.username is not None:
        # A receiver behind basic auth: https://user:password@host/path
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["authorization"] = "Basic " + base64.b64encode(credentials).decode()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection = (
        http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout_s, context=ssl.create_default_context()
        )
        if parts.scheme == "https"
        else http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout_s)
    )
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read(ERROR_BODY_KEPT)
    except (OSError, http.client.HTTPException) as error:
        return Attempt(None, f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return Attempt(response.status, "")
    text = answer.decode(errors="replace").strip()
    return Attempt(response.status, f"HTTP {response.status} {response.reason}" + (f": {text}" if text else ""))
