"""One exchange with a model, as PROTOCOL.md §5 events, transport-neutral.

`Exchange.events()` yields the content and tool events; `Exchange.finish(status)` stores the
exchange and returns the `done` event. Database work goes through `to_thread`, which the caller
chooses: the request's own thread for a plain POST, a worker thread for a detached stream run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

from django.conf import settings

from apps.chat.services import PreparedExchange, exchange_store
from apps.chat.toolbox import tool_execute
from apps.llm.factory import provider_for
from apps.llm.loop import (
    ContentEvent,
    LoopState,
    ToolOutcome,
    ToolResultEvent,
    ToolStartEvent,
    run_tool_loop,
)
from apps.llm.providers.base import CompletionRequest, ToolCall

ToThread = Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]


def content_event(text: str) -> dict[str, Any]:
    return {"type": "content", "content": text}


def error_event(payload: dict[str, Any]) -> dict[str, Any]:
    # `content: ""` on every non-content event keeps the seed's EventSource client
    # (`innerHTML += data.content`) from printing "undefined".
    return {"type": "error", "content": "", **payload}


class Exchange:
    def __init__(self, prepared: PreparedExchange, *, to_thread: ToThread) -> None:
        self.prepared = prepared
        self.to_thread = to_thread
        self.state = LoopState()
        self.stored = False
        self.finishing = False

    async def _execute(self, call: ToolCall) -> ToolOutcome:
        run = partial(
            tool_execute, principal=self.prepared.principal, offered=self.prepared.offered, call=call
        )
        outcome: ToolOutcome = await self.to_thread(run)()
        return outcome

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        prepared = self.prepared
        if prepared.agent:
            yield {"type": "agent", "agent": prepared.agent, "content": ""}
        request = CompletionRequest(
            model=prepared.model.upstream_model,
            messages=prepared.conversation(),
            tools=[tool.definition for tool in prepared.offered.values()],
            temperature=prepared.temperature,
            max_tokens=prepared.max_tokens,
        )
        loop = run_tool_loop(
            provider=provider_for(prepared.model),
            request=request,
            execute_tool=self._execute,
            max_iterations=settings.SLOP_CHAT_MAX_TOOL_ITERATIONS,
            state=self.state,
        )
        async for event in loop:
            if isinstance(event, ContentEvent):
                yield content_event(event.text)
            elif isinstance(event, ToolStartEvent):
                yield {
                    "type": "tool_start",
                    "content": "",
                    "tool": event.call.name,
                    "call_id": event.call.id,
                    "arguments": event.call.arguments,
                }
            elif isinstance(event, ToolResultEvent):
                result: dict[str, Any] = {
                    "type": "tool_result",
                    "content": "",
                    "tool": event.call.name,
                    "call_id": event.call.id,
                }
                if event.outcome.error is not None:
                    result["error"] = event.outcome.error.get("error", "Tool failed")
                    result["code"] = event.outcome.error.get("code", "tool_failed")
                    for key in ("required_scope", "permitted"):
                        if key in event.outcome.error:
                            result[key] = event.outcome.error[key]
                else:
                    result["result"] = event.outcome.result
                yield result

    async def abandon(self) -> None:
        """Gives back the quota reservation of an exchange that ended without being stored (storing
        it meters it and releases the reservation in the same statement)."""
        hold = self.prepared.hold
        if not self.stored and hold is not None and not hold.done:
            await self.to_thread(self.prepared.release)()

    async def finish(self, status: str) -> dict[str, Any]:
        """Stores the exchange (once) and returns the `done` event."""
        self.finishing = True
        body: dict[str, Any] = await self.to_thread(
            partial(exchange_store, prepared=self.prepared, state=self.state, status=status)
        )()
        self.stored = True
        return {"type": "done", "content": "", **body}
