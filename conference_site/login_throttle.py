"""The login throttle's authentication backend (django-axes), first in AUTHENTICATION_BACKENDS."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' backend for every login that comes with its request.

    Logins over HTTP (the admin's form, any view calling ``authenticate``
    with its request) are counted and refused while locked out. A call
    without a request (the test client's ``login()``, a shell) has no
    address to count by: django-axes would raise there, this leaves it to
    the next backend. Code that authenticates an HTTP request must pass the
    request, or it is not throttled.

    django-axes has no ``aauthenticate``, which Django's ``aauthenticate()``
    (``AsyncClient.alogin()``, async views) calls on every backend.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        if request is None:
            return None
        super().authenticate(request, username, password, **kwargs)
        return None

    async def aauthenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        await sync_to_async(self.authenticate)(request, username, password, **kwargs)
