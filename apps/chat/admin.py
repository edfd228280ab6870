from __future__ import annotations

from typing import Any

from django.contrib import admin

from apps.chat.models import Chat, Thread


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    list_display = ["thread_id", "tenant", "title", "model", "updated_at"]

    def get_queryset(self, request: Any) -> Any:
        return Thread.objects.unscoped()


@admin.register(Chat)
class ChatAdmin(admin.ModelAdmin):
    list_display = ["chat_id", "tenant", "thread", "model", "created_at"]

    def get_queryset(self, request: Any) -> Any:
        return Chat.objects.unscoped()
