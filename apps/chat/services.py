"""Chat writes: validating an exchange, and storing it once the model has answered (or stopped).

An exchange is prepared (validated, model resolved, thread history loaded) before
anything is written or streamed, so a bad request is a plain HTTP error and leaves no trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.billing.metering import Hold, Kind, Usage, meter
from apps.billing.quotas import estimate_tokens, reserve_tokens
from apps.chat.models import Chat, Message, Thread
from apps.chat.serializers import ChatRequestSerializer
from apps.chat.toolbox import OfferedTool, offered_tools
from apps.core.ids import new_id
from apps.llm.loop import LoopState
from apps.llm.providers.base import ChatMessage
from apps.llm.selectors import ResolvedModel, model_resolve
from apps.tenants.authentication import Principal

HISTORY_LIMIT = 200  # thread messages the model sees, newest kept


@dataclass
class PreparedExchange:
    principal: Principal
    chat_id: str
    thread_id: str | None
    model: ResolvedModel
    new_messages: list[ChatMessage]
    history: list[ChatMessage]
    offered: dict[str, OfferedTool] = field(default_factory=dict)
    agent: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    hold: Hold | None = None  # the quota reservation it was admitted with (apps/billing/quotas.py)

    @property
    def tenant_id(self) -> int:
        return int(self.principal.tenant.pk)

    @property
    def usage(self) -> Usage:
        return Usage(
            tenant_id=self.tenant_id,
            api_key_id=self.principal.key_id,
            end_user=self.principal.end_user,
            agent=self.agent,
        )

    def release(self) -> None:
        """Gives back the quota reservation of an exchange that will not be stored."""
        if self.hold is not None:
            self.hold.release()

    def conversation(self) -> list[ChatMessage]:
        return [*self.history, *self.new_messages]


def _history(*, tenant_id: int, thread_id: str) -> list[ChatMessage]:
    thread = Thread.objects.for_tenant(tenant_id).filter(thread_id=thread_id).first()
    if thread is None:
        return []
    rows = list(Message.objects.for_tenant(tenant_id).filter(thread=thread).order_by("-pk")[:HISTORY_LIMIT])
    return [ChatMessage(role=row.role, content=row.content) for row in reversed(rows)]


def exchange_prepare(*, principal: Principal, body: dict[str, Any]) -> PreparedExchange:
    """Validates a chat request (ChatRequestSerializer, every problem at once) and admits it
    against the quotas (402 quota_exceeded, before any model call); writes nothing else. Its scope
    (`chat.<thread_id>.write`) is the caller's declared check (apps/chat/access.py SEND), run
    before this by every door. The caller stores the exchange (exchange_store) or releases it."""
    serializer = ChatRequestSerializer(data=body)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    thread_id = data.get("thread_id")
    messages = [ChatMessage(role=m.get("role") or "user", content=m["content"]) for m in data["messages"]]
    model_name = data.get("model")
    agent = data.get("agent") or ""
    temperature = data.get("temperature")
    max_tokens = data.get("max_tokens")
    selection = data.get("tools") or "auto"
    model = model_resolve(tenant=principal.tenant, name=model_name or None)
    if model.max_output_tokens is not None:
        max_tokens = min(max_tokens or model.max_output_tokens, model.max_output_tokens)
    tenant_id = int(principal.tenant.pk)
    prepared = PreparedExchange(
        principal=principal,
        chat_id=new_id("chat"),
        thread_id=thread_id,
        model=model,
        new_messages=messages,
        history=_history(tenant_id=tenant_id, thread_id=thread_id) if thread_id else [],
        offered=offered_tools(principal=principal, selection=selection),
        agent=agent,
        temperature=temperature,
        max_tokens=max_tokens,
    )
    prepared.hold = reserve_tokens(
        usage=prepared.usage,
        estimate=estimate_tokens([m.content for m in prepared.conversation()], max_tokens),
        key_cap=principal.key_monthly_token_cap,
    )
    return prepared


def _snippet(text: str, length: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


def exchange_store(*, prepared: PreparedExchange, state: LoopState, status: str) -> dict[str, Any]:
    """Stores the request's messages and the reply; returns the reply as the API shows it."""
    tenant_id = prepared.tenant_id
    first_user = next((m.content for m in prepared.new_messages if m.role == "user"), "")
    last_user = next((m.content for m in reversed(prepared.new_messages) if m.role == "user"), first_user)
    with transaction.atomic():
        thread = None
        if prepared.thread_id:
            thread, _ = Thread.objects.for_tenant(tenant_id).get_or_create(
                tenant_id=tenant_id,
                thread_id=prepared.thread_id,
                defaults={"title": _snippet(first_user, 80), "model": prepared.model.name},
            )
            thread = Thread.objects.for_tenant(tenant_id).select_for_update().get(pk=thread.pk)
        chat = Chat.objects.create(
            tenant_id=tenant_id,
            chat_id=prepared.chat_id,
            thread=thread,
            model=prepared.model.name,
            snippet=_snippet(first_user, 200),
        )
        rows = [
            Message(
                tenant_id=tenant_id,
                message_id=new_id("msg"),
                chat=chat,
                thread=thread,
                role=m.role,
                content=m.content,
            )
            for m in prepared.new_messages
        ]
        reply = Message(
            tenant_id=tenant_id,
            message_id=new_id("msg"),
            chat=chat,
            thread=thread,
            role="assistant",
            content=state.content,
            agent=prepared.agent,
            model=prepared.model.name,
            tool_calls=state.tool_calls,
            input_tokens=state.input_tokens,
            output_tokens=state.output_tokens,
            status=status,
        )
        Message.objects.bulk_create([*rows, reply])
        if thread is not None:
            thread.title = thread.title or _snippet(first_user, 80)
            thread.last_message = _snippet(last_user or state.content, 500)
            thread.model = prepared.model.name
            thread.updated_at = timezone.now()
            thread.save(update_fields=["title", "last_message", "model", "updated_at"])
        meter(
            usage=prepared.usage,
            kind=Kind.LLM,
            model=prepared.model.name,
            input_tokens=state.input_tokens,
            output_tokens=state.output_tokens,
            hold=prepared.hold,
        )
    message: dict[str, Any] = {
        "id": reply.message_id,
        "role": "assistant",
        "content": reply.content,
        "status": status,
    }
    if prepared.agent:
        message["agent"] = prepared.agent
    return {
        "id": chat.chat_id,
        "thread_id": prepared.thread_id,
        "message": message,
        "model": prepared.model.name,
        "usage": {"input_tokens": state.input_tokens, "output_tokens": state.output_tokens},
        "tool_calls": state.tool_calls,
    }
