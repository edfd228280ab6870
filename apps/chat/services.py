"""Chat writes: validating an exchange, and storing it once the model has answered (or stopped).

An exchange is prepared (validated, model resolved, thread history loaded) before
anything is written or streamed, so a bad request is a plain HTTP error and leaves no trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.chat.models import Chat, Message, Thread
from apps.chat.toolbox import OfferedTool, offered_tools
from apps.core.errors import ValidationFailed
from apps.core.ids import CLIENT_THREAD_ID, new_id
from apps.llm.loop import LoopState
from apps.llm.providers.base import ChatMessage
from apps.llm.selectors import ResolvedModel, model_resolve
from apps.llm.services import usage_record
from apps.tenants.authentication import Principal

ROLES = ("user", "system", "assistant")
MAX_MESSAGES = 500
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

    @property
    def tenant_id(self) -> int:
        return int(self.principal.tenant.pk)

    def conversation(self) -> list[ChatMessage]:
        return [*self.history, *self.new_messages]


def _messages(raw: Any) -> list[ChatMessage]:
    if raw is None or raw == []:
        raise ValidationFailed({"messages": ["At least one message is required."]})
    if not isinstance(raw, list):
        raise ValidationFailed({"messages": ["Must be a list of {role, content} objects."]})
    if len(raw) > MAX_MESSAGES:
        raise ValidationFailed({"messages": [f"At most {MAX_MESSAGES} messages per request."]})
    limit = settings.SLOP_CHAT_MAX_CONTENT_CHARS
    out: list[ChatMessage] = []
    errors: dict[str, list[str]] = {}
    for index, item in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(item, dict):
            errors[where] = ["Must be an object with role and content."]
            continue
        role = item.get("role") or "user"  # the reference clients send {"content": ...} alone
        content = item.get("content")
        problems = len(errors)
        if role not in ROLES:
            errors[f"{where}.role"] = [f"Must be one of {', '.join(ROLES)}, not {role!r}."]
        if not isinstance(content, str):
            errors[f"{where}.content"] = ["Must be a string."]
        elif len(content) > limit:
            errors[f"{where}.content"] = [f"At most {limit} characters (got {len(content)})."]
        if len(errors) == problems:
            out.append(ChatMessage(role=str(role), content=str(content)))
    if errors:
        raise ValidationFailed(errors)
    return out


def _number(body: dict[str, Any], name: str, *, low: float, high: float, integer: bool) -> Any:
    value = body.get(name)
    if value is None:
        return None
    kind_ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not kind_ok or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ValidationFailed({name: [f"Must be {kind} between {low:g} and {high:g}."]})
    return value


def _tool_selection(raw: Any) -> Any:
    if raw is None or raw in ("auto", "none"):
        return raw or "auto"
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return raw
    raise ValidationFailed({"tools": ['Must be "auto", "none" or a list of tool ids.']})


def _history(*, tenant_id: int, thread_id: str) -> list[ChatMessage]:
    thread = Thread.objects.for_tenant(tenant_id).filter(thread_id=thread_id).first()
    if thread is None:
        return []
    rows = list(Message.objects.for_tenant(tenant_id).filter(thread=thread).order_by("-pk")[:HISTORY_LIMIT])
    return [ChatMessage(role=row.role, content=row.content) for row in reversed(rows)]


def exchange_prepare(*, principal: Principal, body: dict[str, Any]) -> PreparedExchange:
    """Validates a chat request; writes nothing. Its scope (`chat.<thread_id>.write`) is the
    caller's declared check (apps/chat/access.py SEND), run before this by every door."""
    thread_id = body.get("thread_id")
    if thread_id is not None and (not isinstance(thread_id, str) or not CLIENT_THREAD_ID.match(thread_id)):
        raise ValidationFailed({"thread_id": ["Must be thread_ followed by 1-64 of A-Z a-z 0-9 _ -."]})
    messages = _messages(body.get("messages"))
    model_name = body.get("model")
    if model_name is not None and not isinstance(model_name, str):
        raise ValidationFailed({"model": ["Must be a string."]})
    agent = body.get("agent") or ""
    if not isinstance(agent, str) or len(agent) > 100:
        raise ValidationFailed({"agent": ["Must be a string of at most 100 characters."]})
    temperature = _number(body, "temperature", low=0, high=2, integer=False)
    max_tokens = _number(body, "max_tokens", low=1, high=1_000_000, integer=True)
    selection = _tool_selection(body.get("tools"))
    model = model_resolve(tenant=principal.tenant, name=model_name or None)
    if model.max_output_tokens is not None:
        max_tokens = min(max_tokens or model.max_output_tokens, model.max_output_tokens)
    tenant_id = int(principal.tenant.pk)
    return PreparedExchange(
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
        usage_record(
            tenant=tenant_id,
            model=prepared.model.name,
            input_tokens=state.input_tokens,
            output_tokens=state.output_tokens,
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
