"""The one provider interface every model speaks: complete and stream, with tool calls.

Messages are kept in a neutral shape (`ChatMessage`); each provider translates them to its own API.
A stream yields `TextDelta`, `ToolCallRequest` and `UsageReport` items; `complete` collects a
stream, so a provider only has to implement `stream`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from apps.core.errors import ApplicationError


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ChatMessage:
    """role: system | user | assistant | tool. An assistant turn may carry tool calls; a tool turn
    answers one call (`tool_call_id`)."""

    role: str
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ToolDefinition:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class CompletionRequest:
    model: str  # the upstream's model id
    messages: list[ChatMessage]
    tools: list[ToolDefinition] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    # False on the loop's last round: the tools stay described (Anthropic wants them whenever the
    # history has tool calls) but the model must answer in text.
    allow_tool_calls: bool = True


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallRequest:
    call: ToolCall


@dataclass(frozen=True)
class UsageReport:
    input_tokens: int
    output_tokens: int


ProviderEvent = TextDelta | ToolCallRequest | UsageReport


@dataclass
class Completion:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


class Provider:
    """Base of every provider. Subclasses implement `stream`."""

    name = "base"

    def stream(self, request: CompletionRequest) -> AsyncIterator[ProviderEvent]:
        raise NotImplementedError

    async def complete(self, request: CompletionRequest) -> Completion:
        completion = Completion()
        parts: list[str] = []
        async for event in self.stream(request):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            elif isinstance(event, ToolCallRequest):
                completion.tool_calls.append(event.call)
            else:
                completion.input_tokens += event.input_tokens
                completion.output_tokens += event.output_tokens
        completion.content = "".join(parts)
        return completion


def upstream_error(provider: str, reason: str, *, upstream_status: int | None = None) -> ApplicationError:
    extra: dict[str, Any] = {"provider": provider}
    if upstream_status is not None:
        extra["upstream_status"] = upstream_status
    return ApplicationError(
        f"The model provider ({provider}) failed: {reason}", code="upstream_error", status=502, extra=extra
    )


def upstream_timeout(provider: str, seconds: float) -> ApplicationError:
    return ApplicationError(
        f"The model provider ({provider}) did not answer within {seconds:g} seconds",
        code="upstream_timeout",
        status=504,
        extra={"provider": provider},
    )


def parse_arguments(raw: str | None) -> dict[str, Any]:
    """Tool-call arguments as streamed by a model: JSON text, possibly empty or not an object."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"value": value}


def estimate_tokens(text: str) -> int:
    """Rough count for providers that do not report usage (about four characters a token)."""
    return max(1, (len(text) + 3) // 4) if text else 0
