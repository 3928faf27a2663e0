"""WEBHOOK_URLS and WEBHOOK_SECRET as read at start-up, and ``manage.py webhook_secret``."""

from __future__ import annotations

import base64
import datetime
import os

import pytest
from django.core.exceptions import ImproperlyConfigured
from standardwebhooks import Webhook

from conference_site.settings import _webhook_secret, _webhook_urls
from tests.processes import manage
from webhooks.sending import signed_headers


def test_urls_are_a_comma_separated_list_of_http_urls() -> None:
    assert _webhook_urls("") == []
    assert _webhook_urls(" https://app.example.com/hooks , http://10.0.0.5:8080/in?x=1 ") == [
        "https://app.example.com/hooks", "http://10.0.0.5:8080/in?x=1",
    ]
    for wrong in ("ftp://example.com/x", "example.com/hooks", "http:///nohost", "http://a/x,http://a/x"):
        with pytest.raises(ImproperlyConfigured):
            _webhook_urls(wrong)


def test_a_secret_is_whsec_and_24_to_64_bytes_of_base64() -> None:
    good = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    assert _webhook_secret(good, "key") == good
    assert _webhook_secret("whsec_" + base64.b64encode(os.urandom(24)).decode().rstrip("="), "key")
    for wrong in (
        base64.b64encode(os.urandom(32)).decode(),  # no prefix
        "whsec_" + base64.b64encode(os.urandom(16)).decode(),  # too short to be a key
        "whsec_" + base64.b64encode(os.urandom(65)).decode(),
        "whsec_not base64 at all!",
    ):
        with pytest.raises(ImproperlyConfigured):
            _webhook_secret(wrong, "key")


def test_without_a_secret_one_is_derived_from_the_secret_key() -> None:
    derived = _webhook_secret("", "the secret key")
    assert derived == _webhook_secret("", "the secret key")  # stable across restarts
    assert derived != _webhook_secret("", "another secret key")
    assert derived.startswith("whsec_") and len(base64.b64decode(derived.removeprefix("whsec_"))) == 32


def test_manage_py_webhook_secret_prints_the_secret_that_verifies(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {key: value for key, value in os.environ.items() if key not in ("WEBHOOK_SECRET", "DATABASE_URL")}
    env.update(SECRET_KEY="a key for this test", VAR_DIR=str(tmp_path))
    printed = manage(env, "webhook_secret").strip()
    assert printed == _webhook_secret("", "a key for this test")
    # An application holding the printed secret verifies what the server signs with its settings.
    body = b'{"type":"room_started"}'
    headers = signed_headers(
        secret=_webhook_secret("", "a key for this test"), webhook_id="msg_1", body=body,
        sent_at=datetime.datetime.now(datetime.UTC),
    )
    assert Webhook(printed).verify(body, headers) == {"type": "room_started"}

    chosen = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    assert manage({**env, "WEBHOOK_SECRET": chosen}, "webhook_secret").strip() == chosen
