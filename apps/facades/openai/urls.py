from __future__ import annotations

from django.urls import path, re_path

from apps.facades.openai.views import ChatCompletionsView, ModelsView, NotFoundView

urlpatterns = [
    path("models", ModelsView.as_view(), name="openai-models"),
    path("chat/completions", ChatCompletionsView.as_view(), name="openai-chat-completions"),
    re_path(r"^(?P<rest>.*)$", NotFoundView.as_view(), name="openai-not-found"),
]
