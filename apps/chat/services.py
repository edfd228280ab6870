"""Chat writes: validating an exchange, and storing it once the model has answered (or stopped).

An exchange is prepared (validated, model resolved, thread history loaded) before
anything is written or streamed, so a bad request is a plain HTTP error and leaves no trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.agents.orchestration.plan import AgentRequest, Plan, plan_prepare
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
    plan: Plan | None = None  # agents run this exchange (apps/agents/orchestration)
    release_agent: bool = False  # `"agent": null` on a thread an agent holds: a plain chat again
    hold: Hold | None = None  # the quota reservation it was admitted with (apps/billing/quotas.py)

    @property
    def tenant_id(self) -> int:
        return int(self.principal.tenant.pk)

    @property
    def usage(self) -> Usage:
        return self.usage_of(self.agent)

    def usage_of(self, agent: str) -> Usage:
        return Usage(
            tenant_id=self.tenant_id,
            api_key_id=self.principal.key_id,
            end_user=self.principal.end_user,
            agent=agent,
        )

    def release(self) -> None:
        """Gives back the quota reservation of an exchange that will not be stored."""
        if self.hold is not None:
            self.hold.release()

    def conversation(self) -> list[ChatMessage]:
        return [*self.history, *self.new_messages]


def _history(thread: Thread | None) -> list[ChatMessage]:
    """What the model sees of a thread. Of an exchange several agents answered, only its reply
    (the last assistant message) is history; the intermediate turns stay readable in the API."""
    if thread is None:
        return []
    rows = list(
        Message.objects.for_tenant(thread.tenant_id).filter(thread=thread).order_by("-pk")[:HISTORY_LIMIT]
    )
    rows.reverse()
    last_reply: dict[int, int] = {}
    for index, row in enumerate(rows):
        if row.role == "assistant":
            last_reply[row.chat_id] = index
    return [
        ChatMessage(role=row.role, content=row.content)
        for index, row in enumerate(rows)
        if row.role != "assistant" or last_reply.get(row.chat_id) == index
    ]


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
    thread = Thread.objects.for_tenant(tenant_id).filter(thread_id=thread_id).first() if thread_id else None
    plan = plan_prepare(
        principal=principal,
        request=AgentRequest(
            agent=agent or None,
            agent_given="agent" in data,
            pattern=data.get("pattern"),
            agents=data.get("agents"),
            aggregator=data.get("aggregator"),
            branches=data.get("branches"),
            model=model_name or None,
            tools=selection,
            temperature=temperature,
            max_tokens=data.get("max_tokens"),
            thread_holder=thread.agent if thread is not None else "",
        ),
        offer=lambda acting, chosen: offered_tools(principal=acting, selection=chosen),
    )
    prepared = PreparedExchange(
        principal=principal,
        chat_id=new_id("chat"),
        thread_id=thread_id,
        model=model,
        new_messages=messages,
        history=_history(thread),
        offered={} if plan is not None else offered_tools(principal=principal, selection=selection),
        agent=plan.first or "" if plan is not None else "",
        temperature=temperature,
        max_tokens=max_tokens,
        plan=plan,
        release_agent=plan is None and "agent" in data and bool(thread is not None and thread.agent),
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


@dataclass(frozen=True)
class Turn:
    """One assistant message to store: a plain reply, or one agent's turn of a run."""

    content: str
    model: str
    status: str
    agent: str = ""
    step: int | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


def exchange_store(*, prepared: PreparedExchange, state: LoopState, status: str) -> dict[str, Any]:
    """Stores the request's messages and the reply; returns the reply as the API shows it."""
    turn = Turn(
        content=state.content,
        model=prepared.model.name,
        status=status,
        agent=prepared.agent,
        tool_calls=state.tool_calls,
        input_tokens=state.input_tokens,
        output_tokens=state.output_tokens,
    )
    holder = "" if prepared.release_agent else None
    return _store(prepared=prepared, turns=[turn], status=status, holder=holder)


def exchange_store_agents(
    *,
    prepared: PreparedExchange,
    turns: list[Turn],
    status: str,
    holder: str | None,
    overhead: tuple[str, int, int] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Stores a multi-agent exchange: each agent's turn is a message of its own (who said what),
    the last one is the reply. `holder`: the agent that holds the thread from now on (None: keep
    it). `overhead`: tokens spent outside any turn (the router model's), as (model, in, out)."""
    return _store(
        prepared=prepared, turns=turns, status=status, holder=holder, overhead=overhead, extra=extra
    )


def _store(
    *,
    prepared: PreparedExchange,
    turns: list[Turn],
    status: str,
    holder: str | None,
    overhead: tuple[str, int, int] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    tenant_id = prepared.tenant_id
    first_user = next((m.content for m in prepared.new_messages if m.role == "user"), "")
    last_user = next((m.content for m in reversed(prepared.new_messages) if m.role == "user"), first_user)
    final = turns[-1]
    chat_model = final.model or prepared.model.name
    with transaction.atomic():
        thread = None
        if prepared.thread_id:
            thread, _ = Thread.objects.for_tenant(tenant_id).get_or_create(
                tenant_id=tenant_id,
                thread_id=prepared.thread_id,
                defaults={"title": _snippet(first_user, 80), "model": chat_model},
            )
            thread = Thread.objects.for_tenant(tenant_id).select_for_update().get(pk=thread.pk)
        chat = Chat.objects.create(
            tenant_id=tenant_id,
            chat_id=prepared.chat_id,
            thread=thread,
            model=chat_model,
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
        replies = [
            Message(
                tenant_id=tenant_id,
                message_id=new_id("msg"),
                chat=chat,
                thread=thread,
                role="assistant",
                content=turn.content,
                agent=turn.agent,
                step=turn.step,
                model=turn.model,
                tool_calls=turn.tool_calls,
                input_tokens=turn.input_tokens,
                output_tokens=turn.output_tokens,
                status=turn.status,
            )
            for turn in turns
        ]
        Message.objects.bulk_create([*rows, *replies])
        if thread is not None:
            thread.title = thread.title or _snippet(first_user, 80)
            thread.last_message = _snippet(last_user or final.content, 500)
            thread.model = chat_model
            thread.updated_at = timezone.now()
            fields = ["title", "last_message", "model", "updated_at"]
            if holder is not None:
                thread.agent = holder
                fields.append("agent")
            thread.save(update_fields=fields)
        # Metered per agent and model, as each turn spent it; the last event settles the quota hold.
        spent: dict[tuple[str, str], list[int]] = {}
        for turn in turns:
            if turn.model:
                totals = spent.setdefault((turn.agent, turn.model), [0, 0])
                totals[0] += turn.input_tokens
                totals[1] += turn.output_tokens
        if overhead is not None and (overhead[1] or overhead[2]):
            totals = spent.setdefault(("", overhead[0]), [0, 0])
            totals[0] += overhead[1]
            totals[1] += overhead[2]
        events = list(spent.items()) or [(("", prepared.model.name), [0, 0])]
        for index, ((agent_id, model_name), (input_tokens, output_tokens)) in enumerate(events):
            meter(
                usage=prepared.usage_of(agent_id or prepared.agent),
                kind=Kind.LLM,
                model=model_name,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                hold=prepared.hold if index == len(events) - 1 else None,
            )
    input_total = sum(t.input_tokens for t in turns) + (overhead[1] if overhead else 0)
    output_total = sum(t.output_tokens for t in turns) + (overhead[2] if overhead else 0)
    reply = replies[-1]
    message: dict[str, Any] = {
        "id": reply.message_id,
        "role": "assistant",
        "content": reply.content,
        "status": status,
    }
    if final.agent:
        message["agent"] = final.agent
    tool_calls = [
        {**call, "agent": turn.agent} if turn.agent and prepared.plan is not None else call
        for turn in turns
        for call in turn.tool_calls
    ]
    return {
        "id": chat.chat_id,
        "thread_id": prepared.thread_id,
        "message": message,
        "model": chat_model,
        "usage": {"input_tokens": input_total, "output_tokens": output_total},
        "tool_calls": tool_calls,
        **(extra or {}),
    }
