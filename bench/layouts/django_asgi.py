"""The layout before issue 16: every HTTP request through Django's ASGI handler (one hop to the
thread-sensitive thread per request), WebSocket through Channels."""

from __future__ import annotations

from channels.routing import ProtocolTypeRouter

import slop_platform.asgi as platform

application = ProtocolTypeRouter({"http": platform.django_asgi_app, "websocket": platform.websocket_app})
