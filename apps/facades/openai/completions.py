"""POST /v1/chat/completions over the chat service: the same `exchange_prepare` (validation, model,
quotas) and `Exchange.finish` (storage, usage) as POST /chat, so nothing about a chat is
implemented twice.

Two ways through:
- a model (`"model": "echo"`): one model turn with the *client's* tools described. The tool calls
  the model makes go back to the client (OpenAI's client-side tools); nothing runs server-side, so
  the turn is the tool loop's single round (`ClientToolsExchange`), never `run_tool_loop`.
- an agent (`"model": "agent:<id>"`): the chat service's own exchange with `agent=<id>`, which runs
  the agent server-side with its tools; the client sees its reply.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from apps.chat.engine import Exchange, ToThread, content_event
from apps.chat.services import PreparedExchange, exchange_prepare
from apps.core.errors import ApplicationError, internal_error, to_application_error
from apps.facades.openai.errors import invalid, openai_error_body, unsupported
from apps.llm.factory import provider_for
from apps.llm.providers.base import (
    ChatMessage,
    CompletionRequest,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolDefinition,
    UsageReport,
    parse_arguments,
)
from apps.tenants.authentication import END_USER_HEADER, Principal, end_user_of

AGENT_PREFIX = "agent:"
_SLOP_ROLE = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def agent_id_of(model: Any) -> str | None:
    if isinstance(model, str) and model.startswith(AGENT_PREFIX):
        return model[len(AGENT_PREFIX) :]
    return None


def _text(content: Any, param: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for index, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise unsupported(
                    f"{param}[{index}]", 'only {"type": "text", "text": ...} parts are understood'
                )
            parts.append(part["text"])
        return "".join(parts)
    raise invalid(param, "must be a string or a list of text parts.")


def conversation(messages: list[dict[str, Any]]) -> list[ChatMessage]:
    """OpenAI's messages as the platform's; a tool message gets its function's name from the
    assistant call it answers (providers and the echo model say whose result it is)."""
    converted: list[ChatMessage] = []
    names: dict[str, str] = {}
    for index, message in enumerate(messages):
        role = message["role"]
        content = _text(message.get("content"), f"messages[{index}].content")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not call_id or call_id not in names:
                raise invalid(
                    f"messages[{index}].tool_call_id",
                    "must answer a tool call of an earlier assistant message.",
                )
            converted.append(
                ChatMessage(role="tool", content=content, tool_call_id=call_id, name=names[call_id])
            )
            continue
        calls: tuple[ToolCall, ...] = ()
        if message.get("tool_calls"):
            if role != "assistant":
                raise invalid(f"messages[{index}].tool_calls", "only assistant messages carry tool calls.")
            calls = tuple(
                ToolCall(
                    id=c["id"],
                    name=c["function"]["name"],
                    arguments=parse_arguments(c["function"]["arguments"]),
                )
                for c in message["tool_calls"]
            )
            names.update({call.id: call.name for call in calls})
        converted.append(ChatMessage(role=_SLOP_ROLE[role], content=content, tool_calls=calls))
    return converted


@dataclass
class Plan:
    """What a validated request asks for, in the chat service's terms."""

    model: str  # as the client named it (the response repeats it)
    agent: str | None
    stream: bool
    include_usage: bool
    tools: list[ToolDefinition] = field(default_factory=list)
    allow_tool_calls: bool = True


def with_user(principal: Principal, user: Any) -> Principal:
    """OpenAI's `user` is the X-SLOP-User of this door: the end user the request is attributed to
    (usage by user, the team's per-user cap). Naming another end user than the header is a 400."""
    if user is None:
        return principal
    try:
        named = end_user_of(user)
    except ApplicationError as error:
        raise invalid("user", f"{error.message}.") from None
    if principal.end_user and principal.end_user != named:
        raise invalid("user", f"{END_USER_HEADER} names another end user; send one of them.")
    return replace(principal, end_user=named)


def prepare(*, principal: Principal, data: dict[str, Any]) -> tuple[Plan, PreparedExchange]:
    """The chat service's preparation (validation, model, quotas) for an OpenAI request, for the
    end user `user` names."""
    principal = with_user(principal, data.get("user"))
    agent = agent_id_of(data["model"])
    messages = conversation(data["messages"])
    tools = [
        ToolDefinition(
            name=tool["function"]["name"],
            description=tool["function"].get("description") or tool["function"]["name"],
            parameters=tool["function"].get("parameters") or {"type": "object", "properties": {}},
        )
        for tool in data.get("tools") or []
    ]
    if agent is not None:
        if tools:
            raise unsupported("tools", "an agent runs its own tools server-side; client tools go to a model")
        if any(m.role == "tool" or m.tool_calls for m in messages):
            raise invalid("messages", "an agent's conversation holds no client tool calls.")
    body: dict[str, Any] = {
        "messages": [
            {"role": m.role if m.role != "tool" else "user", "content": m.content} for m in messages
        ],
    }
    if agent is not None:
        body["agent"] = agent  # its own tools and model, as POST /chat {"agent": …} runs it
    else:
        body["model"] = data["model"]
        body["tools"] = "none"  # the team's tools are not offered: the client brings its own
    for name in ("temperature", "max_tokens"):
        if data.get(name) is not None:
            body[name] = data[name]
    if data.get("max_completion_tokens") is not None:
        body["max_tokens"] = data["max_completion_tokens"]
    prepared = exchange_prepare(principal=principal, body=body)
    if agent is None:
        # The service validated the text; the model sees the conversation with its tool calls.
        prepared.new_messages = messages
    plan = Plan(
        model=data["model"],
        agent=agent,
        stream=bool(data.get("stream")),
        include_usage=bool((data.get("stream_options") or {}).get("include_usage")),
        tools=tools,
        allow_tool_calls=data.get("tool_choice") != "none",
    )
    return plan, prepared


class ClientToolsExchange(Exchange):
    """One model turn with the client's tools: the model's text, and its tool calls handed back to
    the client unexecuted. Stored and metered by the chat service like any exchange."""

    def __init__(self, prepared: PreparedExchange, *, plan: Plan, to_thread: ToThread) -> None:
        super().__init__(prepared, to_thread=to_thread)
        self.plan = plan
        self.calls: list[ToolCall] = []

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        prepared = self.prepared
        request = CompletionRequest(
            model=prepared.model.upstream_model,
            messages=prepared.conversation(),
            tools=self.plan.tools,
            temperature=prepared.temperature,
            max_tokens=prepared.max_tokens,
            allow_tool_calls=self.plan.allow_tool_calls,
        )
        async for event in provider_for(prepared.model).stream(request):
            if isinstance(event, TextDelta):
                self.state.parts.append(event.text)
                yield content_event(event.text)
            elif isinstance(event, ToolCallRequest):
                self.calls.append(event.call)
                self.state.tool_calls.append(
                    {"id": event.call.id, "tool": event.call.name, "arguments": event.call.arguments}
                )
                yield {"type": "client_tool_call", "call": event.call, "index": len(self.calls) - 1}
            elif isinstance(event, UsageReport):
                self.state.input_tokens += event.input_tokens
                self.state.output_tokens += event.output_tokens


def exchange_for(plan: Plan, prepared: PreparedExchange, *, to_thread: ToThread) -> Exchange:
    if plan.agent is not None:
        return Exchange(prepared, to_thread=to_thread)
    return ClientToolsExchange(prepared, plan=plan, to_thread=to_thread)


# --- OpenAI's shapes -----------------------------------------------------------------------------


def _tool_call_json(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
    }


def _usage(usage: dict[str, int]) -> dict[str, int]:
    prompt, completion = usage["input_tokens"], usage["output_tokens"]
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _calls_of(exchange: Exchange) -> list[ToolCall]:
    return exchange.calls if isinstance(exchange, ClientToolsExchange) else []


def _finish_reason(exchange: Exchange) -> str:
    if _calls_of(exchange):
        return "tool_calls"
    limit = exchange.prepared.max_tokens
    return "length" if limit is not None and exchange.state.output_tokens >= limit else "stop"


async def complete(exchange: Exchange, plan: Plan) -> dict[str, Any]:
    """The whole reply as a `chat.completion`; nothing is stored if the model fails."""
    async for _ in exchange.events():
        pass
    done = await exchange.finish("complete")
    calls = _calls_of(exchange)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": done["message"]["content"] if not calls or done["message"]["content"] else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = [_tool_call_json(call) for call in calls]
    return {
        "id": done["id"],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": plan.model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": _finish_reason(exchange), "logprobs": None}
        ],
        "usage": _usage(done["usage"]),
    }


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'), default=str)}\n\n".encode()


async def stream(exchange: Exchange, plan: Plan) -> AsyncIterator[bytes]:
    """`chat.completion.chunk` events, then `data: [DONE]`. An error after the first byte can only
    be told in the stream: an `{"error": …}` event in OpenAI's shape, then the end."""
    created = int(time.time())
    base = {
        "id": exchange.prepared.chat_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": plan.model,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        body: dict[str, Any] = {
            **base,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
        if plan.include_usage:
            body["usage"] = None
        return _sse(body)

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in exchange.events():
            if event["type"] == "content":
                yield chunk({"content": event["content"]})
            elif event["type"] == "client_tool_call":
                call_json = {"index": event["index"], **_tool_call_json(event["call"])}
                yield chunk({"tool_calls": [call_json]})
            # An agent's own (server-side) tool events are its business, not the client's.
        done = await exchange.finish("complete")
    except asyncio.CancelledError:  # the client left: keep what was said, marked incomplete
        if exchange.state.produced_anything and not exchange.finishing:
            await exchange.finish("incomplete")
        raise
    except Exception as exc:
        error = to_application_error(exc) or internal_error(None, exc)
        if exchange.state.produced_anything and not exchange.finishing:
            await exchange.finish("incomplete")
        yield _sse(openai_error_body(error)[1])
        yield b"data: [DONE]\n\n"
        return
    yield chunk({}, _finish_reason(exchange))
    if plan.include_usage:
        yield _sse({**base, "choices": [], "usage": _usage(done["usage"])})
    yield b"data: [DONE]\n\n"
