"""ASGI entry point: HTTP through Django, WebSocket through Channels with API-key auth."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slop_platform.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application() does first

from apps.core.asgi import SingleHopASGIHandler  # noqa: E402
from apps.core.redaction import install_access_log  # noqa: E402

install_access_log()

django_asgi_app = SingleHopASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.tenants.authentication import ApiKeyAuthMiddleware  # noqa: E402
from slop_platform.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": ApiKeyAuthMiddleware(URLRouter(websocket_urlpatterns)),
    }
)
