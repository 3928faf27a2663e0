"""The baseline server of ``tests/bench/signaling.py --compare``: stock Channels dispatch.

The project's ``RoomConsumer.dispatch`` skips the thread hop that Channels'
``AsyncConsumer.dispatch`` makes before every message (``aclose_old_connections``).
This ASGI application is ``conference_site.asgi`` with ``/ws/rooms/`` routed to a
``RoomConsumer`` that uses Channels' own dispatch again, so the benchmark can
measure the stock behaviour without a switch in the server code. The benchmark
also sets ``CHANNEL_LAYER=lists`` (Channels' classic ``RedisChannelLayer``) for
these processes. Only the benchmark uses it::

    daphne -b 127.0.0.1 -p 8001 tests.bench.stock_asgi:application   # from the project root
"""

from __future__ import annotations

# First: sets Django up, which channels.auth and rooms.consumers need at import.
from conference_site.asgi import django_asgi_app

# isort: split
from channels.auth import AuthMiddlewareStack
from channels.consumer import AsyncConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from rooms.consumers import RoomConsumer


class StockDispatchRoomConsumer(RoomConsumer):
    """``RoomConsumer`` with Channels' ``AsyncConsumer.dispatch``: a thread hop per message, no error guard."""

    dispatch = AsyncConsumer.dispatch


# The same stack as conference_site.asgi.application, bar the consumer class.
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([path("ws/rooms/", StockDispatchRoomConsumer.as_asgi())]))
        ),
    }
)
