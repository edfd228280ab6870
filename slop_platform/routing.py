"""WebSocket routes; each app that serves WebSocket adds its patterns here."""

from __future__ import annotations

from typing import Any

websocket_urlpatterns: list[Any] = []
