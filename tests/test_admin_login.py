"""Admin login is throttled (django-axes): a username from one address is locked out after
LOGIN_FAILURE_LIMIT failures, for LOGIN_LOCKOUT_S; a success resets the count."""

from __future__ import annotations

import datetime

import pytest
from asgiref.sync import sync_to_async
from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.db import connections
from django.test import AsyncClient, Client
from django.utils.module_loading import import_string

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-operator-password"


@pytest.fixture(autouse=True)
def operators() -> None:
    User.objects.create_user("operator", password=PASSWORD, is_staff=True)
    User.objects.create_user("other", password=PASSWORD, is_staff=True)


def log_in(client: Client, username: str, password: str) -> int:
    """The status of a real post of the admin login form: 302 in, 200 form again, 429 locked out."""
    response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    return response.status_code


def test_the_backend_of_axes_comes_first(settings) -> None:  # type: ignore[no-untyped-def]
    first = import_string(settings.AUTHENTICATION_BACKENDS[0])
    assert issubclass(first, AxesStandaloneBackend)
    assert settings.AXES_FAILURE_LIMIT == 5
    assert not [message for message in run_checks() if message.id and message.id.startswith("axes.")]


def test_the_test_clients_login_still_works() -> None:
    """authenticate() without a request (Client.login) is left to the model backend."""
    client = Client()
    assert client.login(username="operator", password="wrong") is False
    assert client.login(username="operator", password=PASSWORD) is True
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_the_async_test_clients_login_still_works() -> None:
    client = AsyncClient()
    assert await client.alogin(username="operator", password=PASSWORD) is True
    # The login ran in the thread of sync_to_async: close its connection, or
    # PostgreSQL's test database cannot be dropped at the end.
    await sync_to_async(connections.close_all)()


def test_a_username_is_locked_out_after_the_failure_limit() -> None:
    client = Client()
    assert [log_in(client, "operator", "wrong") for _ in range(4)] == [200] * 4
    locked = client.post("/admin/login/", {"username": "operator", "password": "wrong"})
    assert locked.status_code == 429
    assert "too many login attempts" in locked.content.decode()
    # Even the right password is refused now, and nobody is logged in.
    assert log_in(client, "operator", PASSWORD) == 429
    assert client.get("/admin/").status_code == 302
    # Another operator from the same address is not locked out.
    assert log_in(Client(), "other", PASSWORD) == 302


def test_the_lockout_ends_after_its_time(settings) -> None:  # type: ignore[no-untyped-def]
    settings.AXES_COOLOFF_TIME = datetime.timedelta(minutes=15)
    client = Client()
    for _ in range(5):
        log_in(client, "operator", "wrong")
    assert log_in(client, "operator", PASSWORD) == 429
    AccessAttempt.objects.update(attempt_time=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=16))
    assert log_in(client, "operator", PASSWORD) == 302


def test_a_success_resets_the_count() -> None:
    client = Client()
    for _ in range(4):
        assert log_in(client, "operator", "wrong") == 200
    assert log_in(client, "operator", PASSWORD) == 302
    client.logout()
    for _ in range(4):
        assert log_in(client, "operator", "wrong") == 200
    assert log_in(client, "operator", PASSWORD) == 302
