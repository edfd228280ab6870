from __future__ import annotations

from django.urls import path

from apps.chat.consumers import ChatConsumer

websocket_urlpatterns = [path("chat/ws", ChatConsumer.as_asgi())]
