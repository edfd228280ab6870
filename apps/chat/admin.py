"""Operators' admin for chats and threads: records of exchanges through /chat, read with their
messages. Nothing here creates one by hand (a chat without its exchange means nothing); a thread's
title may be changed, and either may be deleted with its messages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.chat.models import Chat, Message, Thread
from apps.core.admin import OperatorAdmin, OperatorTabularInline


class MessageInline(OperatorTabularInline):
    model = Message
    fk_name = "chat"
    fields = readonly_fields = ("message_id", "role", "agent", "content", "model", "status", "created_at")
    ordering = ["created_at", "id"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ThreadMessageInline(MessageInline):
    fk_name = "thread"


@admin.register(Thread)
class ThreadAdmin(OperatorAdmin):
    list_display = ["thread_id", "tenant", "title", "model", "updated_at"]
    list_filter = ["tenant"]
    list_select_related = ["tenant"]
    search_fields = ["thread_id", "title"]
    ordering = ["-updated_at"]
    fields = ["tenant", "thread_id", "title", "model", "last_message", "created_at", "updated_at"]
    readonly_fields = ["tenant", "thread_id", "model", "last_message", "created_at", "updated_at"]
    inlines = [ThreadMessageInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Chat)
class ChatAdmin(OperatorAdmin):
    list_display = ["chat_id", "tenant", "thread", "model", "snippet", "created_at"]
    list_filter = ["tenant"]
    list_select_related = ["tenant", "thread"]
    search_fields = ["chat_id", "snippet"]
    ordering = ["-created_at"]
    inlines = [MessageInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of an exchange: viewed (and deleted), never edited
