"""The tool-calling loop: ask the model, run the tools it calls, hand back the results, repeat until it
answers or the iteration cap is reached. Transport-neutral: it yields `LoopEvent`s and keeps the
totals in a `LoopState` the caller reads (also after a cancellation)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from apps.core.observability import tracing
from apps.core.observability.genai import ModelCall
from apps.llm.providers.base import (
    ChatMessage,
    CompletionRequest,
    Provider,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    UsageReport,
)


@dataclass(frozen=True)
class ToolOutcome:
    result: Any = None
    error: dict[str, Any] | None = None  # an error payload (error, code, ...)
    # The call ends the model's turn: the loop stops after this round's calls (an agent's handoff).
    ends_turn: bool = False

    def as_model_text(self) -> str:
        return json.dumps(
            {"error": self.error} if self.error is not None else {"result": self.result}, default=str
        )


@dataclass(frozen=True)
class ContentEvent:
    text: str


@dataclass(frozen=True)
class ToolStartEvent:
    call: ToolCall


@dataclass(frozen=True)
class ToolResultEvent:
    call: ToolCall
    outcome: ToolOutcome


LoopEvent = ContentEvent | ToolStartEvent | ToolResultEvent
ToolExecutor = Callable[[ToolCall], Awaitable[ToolOutcome]]


@dataclass
class LoopState:
    parts: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def content(self) -> str:
        return "".join(self.parts)

    @property
    def produced_anything(self) -> bool:
        return bool(self.parts or self.tool_calls)


def _record(call: ToolCall, outcome: ToolOutcome | None) -> dict[str, Any]:
    record: dict[str, Any] = {"id": call.id, "tool": call.name, "arguments": call.arguments}
    if outcome is not None:
        if outcome.error is not None:
            record["error"] = outcome.error
        else:
            record["result"] = outcome.result
    return record


async def run_tool_loop(
    *,
    provider: Provider,
    request: CompletionRequest,
    execute_tool: ToolExecutor,
    max_iterations: int,
    state: LoopState,
) -> AsyncIterator[LoopEvent]:
    messages = list(request.messages)
    # Spans of this loop take the context current at its start as their parent (an agent's, the
    # request's): a context made current here would have to outlive a yield.
    parent = tracing.current_context()
    for iteration in range(max_iterations + 1):
        last_round = iteration == max_iterations
        round_request = replace(request, messages=messages, allow_tool_calls=not last_round)
        round_text: list[str] = []
        calls: list[ToolCall] = []
        model_call = ModelCall(
            provider=provider.name,
            model=request.model,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            parent=parent,
        )
        failure: BaseException | None = None
        try:
            async for event in provider.stream(round_request):
                if isinstance(event, TextDelta):
                    model_call.first_output()
                    round_text.append(event.text)
                    state.parts.append(event.text)
                    yield ContentEvent(event.text)
                elif isinstance(event, ToolCallRequest):
                    model_call.first_output()
                    calls.append(event.call)
                elif isinstance(event, UsageReport):
                    model_call.usage(event.input_tokens, event.output_tokens)
                    state.input_tokens += event.input_tokens
                    state.output_tokens += event.output_tokens
        except BaseException as exc:
            failure = exc
            raise
        finally:
            model_call.finish(failure)
        if not calls:
            return
        messages.append(ChatMessage(role="assistant", content="".join(round_text), tool_calls=tuple(calls)))
        ended = False
        for call in calls:
            yield ToolStartEvent(call)
            if last_round:
                outcome = ToolOutcome(
                    error={
                        "error": f"Tool-call limit reached ({max_iterations} rounds); the tool was not run",
                        "code": "tool_limit_reached",
                    }
                )
            else:
                state.tool_calls.append(_record(call, None))
                span = tracing.tool_span(tool=call.name, call_id=call.id, parent=parent)
                try:
                    outcome = await execute_tool(call)
                except Exception as exc:
                    tracing.end_span(span, exc)
                    raise
                tracing.end_span(span, None, **{"error.type": (outcome.error or {}).get("code")})
                state.tool_calls.pop()
            state.tool_calls.append(_record(call, outcome))
            ended = ended or outcome.ends_turn
            yield ToolResultEvent(call, outcome)
            messages.append(
                ChatMessage(
                    role="tool", content=outcome.as_model_text(), tool_call_id=call.id, name=call.name
                )
            )
        if last_round or ended:
            return
