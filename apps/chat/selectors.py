"""Chat reads, always inside the tenant and narrowed by the caller's chat scopes in SQL."""

from __future__ import annotations

from apps.chat.models import Chat, Message, Thread
from apps.core.errors import NotFound
from apps.core.pagination import Page, paginate
from apps.tenants.access import readable
from apps.tenants.authentication import Principal


def chat_list(*, principal: Principal, cursor: str | None, limit: int) -> Page:
    """Standalone chats (exchanges without a thread), newest first."""
    queryset = Chat.objects.for_tenant(principal.tenant).filter(thread__isnull=True)
    allowed = readable(principal, "chat")
    if allowed is not None:
        queryset = queryset.filter(chat_id__in=allowed)
    return paginate(queryset, cursor=cursor, limit=limit)


def thread_list(*, principal: Principal, cursor: str | None, limit: int) -> Page:
    """Threads, most recently active first."""
    queryset = Thread.objects.for_tenant(principal.tenant)
    allowed = readable(principal, "chat")
    if allowed is not None:
        queryset = queryset.filter(thread_id__in=allowed)
    return paginate(queryset, cursor=cursor, limit=limit, time_field="updated_at")


def chat_get(*, principal: Principal, chat_id: str) -> Chat:
    chat = Chat.objects.for_tenant(principal.tenant).select_related("thread").filter(chat_id=chat_id).first()
    if chat is None:
        raise NotFound(f"Chat not found: {chat_id}")
    return chat


def chat_messages(*, chat: Chat) -> list[Message]:
    return list(Message.objects.for_tenant(chat.tenant_id).filter(chat=chat).order_by("pk"))


def thread_get(*, principal: Principal, thread_id: str) -> Thread:
    thread = Thread.objects.for_tenant(principal.tenant).filter(thread_id=thread_id).first()
    if thread is None:
        raise NotFound(f"Thread not found: {thread_id}")
    return thread


def thread_messages(*, thread: Thread, cursor: str | None, limit: int) -> Page:
    """A page of a thread's messages: the newest `limit` (before the cursor), oldest first."""
    page = paginate(
        Message.objects.for_tenant(thread.tenant_id).filter(thread=thread), cursor=cursor, limit=limit
    )
    return Page(items=list(reversed(page.items)), next_cursor=page.next_cursor)
