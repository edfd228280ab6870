from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "apps.chat"
    label = "chat"
    verbose_name = "Chat"
    slop_capabilities: dict[str, Any] = {"streaming": True, "sse": True, "ndjson": True, "websockets": True}
