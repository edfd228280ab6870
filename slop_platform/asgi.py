"""ASGI entry point: HTTP through Django, WebSocket through Channels with API-key auth."""

from __future__ import annotations

import os

import django

from slop_platform.startup import embedding_model_preload, settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slop_platform.settings")
settings_or_exit()
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application() does first

from apps.core.asgi import SingleHopASGIHandler  # noqa: E402
from apps.core.redaction import install_access_log  # noqa: E402

install_access_log()

django_asgi_app = SingleHopASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.tenants.authentication import ApiKeyAuthMiddleware  # noqa: E402
from apps.tenants.public import PublicSurfaceASGIMiddleware  # noqa: E402
from slop_platform.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": PublicSurfaceASGIMiddleware(ApiKeyAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)

# Before Daphne listens, so no request waits for it.
embedding_model_preload()
