"""WebSocket routes; each app that serves WebSocket adds its patterns here."""

from __future__ import annotations

from typing import Any

from apps.chat.routing import websocket_urlpatterns as chat_websocket_urlpatterns

websocket_urlpatterns: list[Any] = [*chat_websocket_urlpatterns]
