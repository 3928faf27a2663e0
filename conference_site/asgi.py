"""ASGI entry point: ``daphne conference_site.asgi:application`` serves pages,
admin, static files and the ``/ws/rooms/`` signaling socket."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conference_site.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from conference_site.access_log import access_log_install  # noqa: E402
from conference_site.backpressure import StreamingBackPressure  # noqa: E402
from rooms.checks import open_mode_refuse_unless_explicit  # noqa: E402
from rooms.routing import websocket_urlpatterns  # noqa: E402

open_mode_refuse_unless_explicit()
access_log_install()

application = ProtocolTypeRouter(
    {
        "http": StreamingBackPressure(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
