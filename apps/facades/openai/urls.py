from __future__ import annotations

from django.urls import path

from apps.facades.openai.views import ChatCompletionsView, ModelsView

urlpatterns = [
    path("models", ModelsView.as_view(), name="openai-models"),
    path("chat/completions", ChatCompletionsView.as_view(), name="openai-chat-completions"),
]
