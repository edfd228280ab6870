from __future__ import annotations

from django.urls import path

from apps.chat.api import ChatDetailView, ChatStreamView, ChatTicketView, ChatView

urlpatterns = [
    path("chat", ChatView.as_view(), name="chat"),
    path("chat/stream", ChatStreamView.as_view(), name="chat-stream"),
    path("chat/tickets", ChatTicketView.as_view(), name="chat-tickets"),
    path("chat/<str:identifier>", ChatDetailView.as_view(), name="chat-detail"),
]
