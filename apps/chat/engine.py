"""One exchange with a model, as PROTOCOL.md §5 events, transport-neutral.

`Exchange.events()` yields the content and tool events; `Exchange.finish(status)` stores the
exchange and returns the `done` event. Database work goes through `to_thread`, which the caller
chooses: the request's own thread for a plain POST, a worker thread for a detached stream run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any

from django.conf import settings

from apps.agents.limits import AgentLimitExceeded
from apps.agents.orchestration.run import AgentRun, AgentStarted
from apps.chat.services import PreparedExchange, Turn, exchange_store, exchange_store_agents
from apps.chat.toolbox import OfferedTool, tool_execute
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
from apps.tenants.authentication import Principal

ToThread = Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]


def content_event(text: str) -> dict[str, Any]:
    return {"type": "content", "content": text}


def error_event(payload: dict[str, Any]) -> dict[str, Any]:
    # `content: ""` on every non-content event keeps the seed's EventSource client
    # (`innerHTML += data.content`) from printing "undefined".
    return {"type": "error", "content": "", **payload}


def loop_event(event: Any) -> dict[str, Any]:
    """A tool loop's event as PROTOCOL.md §5 renders it."""
    if isinstance(event, ContentEvent):
        return content_event(event.text)
    if isinstance(event, ToolStartEvent):
        return {
            "type": "tool_start",
            "content": "",
            "tool": event.call.name,
            "call_id": event.call.id,
            "arguments": event.call.arguments,
        }
    assert isinstance(event, ToolResultEvent)
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
    return result


class _AgentsProgress:
    """What `_produce` reads of a run (`produced_anything`) while agents answer."""

    def __init__(self, run: AgentRun) -> None:
        self.run = run

    @property
    def produced_anything(self) -> bool:
        return self.run.produced_anything


class Exchange:
    def __init__(self, prepared: PreparedExchange, *, to_thread: ToThread) -> None:
        self.prepared = prepared
        self.to_thread = to_thread
        self.state: Any = LoopState()
        self.stored = False
        self.finishing = False
        self.agent_run: AgentRun | None = None
        self.limit_error: AgentLimitExceeded | None = None
        if prepared.plan is not None:
            self.agent_run = AgentRun(
                prepared.plan,
                conversation=prepared.conversation(),
                tenant_id=prepared.tenant_id,
                execute_tool=self._execute_as,
                to_thread=to_thread,
                max_tool_iterations=settings.SLOP_CHAT_MAX_TOOL_ITERATIONS,
            )
            self.state = _AgentsProgress(self.agent_run)

    async def _execute(self, call: ToolCall) -> ToolOutcome:
        return await self._execute_as(self.prepared.principal, self.prepared.offered, call)

    async def _execute_as(
        self, principal: Principal, offered: dict[str, OfferedTool], call: ToolCall
    ) -> ToolOutcome:
        run = partial(tool_execute, principal=principal, offered=offered, call=call)
        outcome: ToolOutcome = await self.to_thread(run)()
        return outcome

    async def _agent_events(self, run: AgentRun) -> AsyncIterator[dict[str, Any]]:
        try:
            async for item in run.events():
                if isinstance(item, AgentStarted):
                    started: dict[str, Any] = {
                        "type": "agent",
                        "content": "",
                        "agent": item.agent,
                        "step": item.step,
                        "pattern": item.pattern,
                    }
                    if item.reason is not None:
                        started["reason"] = item.reason
                    if item.score is not None:
                        started["score"] = item.score
                    yield started
                else:
                    yield {**loop_event(item.event), "agent": item.agent, "step": item.step}
        except AgentLimitExceeded as exceeded:
            # The run ends here: the error, then `done` with what was said, stored as incomplete.
            self.limit_error = exceeded
            yield error_event(exceeded.payload())

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        prepared = self.prepared
        if self.agent_run is not None:
            async for event in self._agent_events(self.agent_run):
                yield event
            return
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
        async for loop_item in loop:
            yield loop_event(loop_item)

    async def abandon(self) -> None:
        """Gives back the quota reservation of an exchange that ended without being stored (storing
        it meters it and releases the reservation in the same statement)."""
        hold = self.prepared.hold
        if not self.stored and hold is not None and not hold.done:
            await self.to_thread(self.prepared.release)()

    async def finish(self, status: str) -> dict[str, Any]:
        """Stores the exchange (once) and returns the `done` event."""
        self.finishing = True
        if self.agent_run is not None:
            body = await self._finish_agents(self.agent_run, status)
        else:
            body = await self.to_thread(
                partial(exchange_store, prepared=self.prepared, state=self.state, status=status)
            )()
        self.stored = True
        return {"type": "done", "content": "", **body}

    async def _finish_agents(self, run: AgentRun, status: str) -> dict[str, Any]:
        if self.limit_error is not None:
            status = "incomplete"
        turns = [
            Turn(
                content=record.state.content,
                model=record.model,
                status=record.status,
                agent=record.agent,
                step=record.step,
                tool_calls=record.state.tool_calls,
                input_tokens=record.state.input_tokens,
                output_tokens=record.state.output_tokens,
            )
            for record in run.steps
        ]
        if run.merged or not turns:
            # Parallel answers without an aggregator (or nothing at all): the reply is one message
            # of its own, holding every answer; its tokens are the turns' already.
            model = run.steps[-1].model if run.steps else self.prepared.model.name
            turns.append(Turn(content=run.reply_content(), model=model, status=status))
        elif status == "incomplete" or run.reply is None:
            # The last turn is the reply: it is as incomplete as the run (earlier turns keep theirs).
            turns[-1] = replace(turns[-1], status="incomplete")
        holder = run.final_agent if run.final_agent and run.reply is not None else None
        extra: dict[str, Any] = {"agents": [record.as_json() for record in run.steps]}
        if self.limit_error is not None:
            extra["error"] = self.limit_error.payload()
        router_model = self.prepared.plan.router_model if self.prepared.plan else None
        overhead_model = router_model.name if router_model is not None else (turns[0].model if turns else "")
        overhead = (overhead_model, run.overhead.input_tokens, run.overhead.output_tokens)
        body: dict[str, Any] = await self.to_thread(
            partial(
                exchange_store_agents,
                prepared=self.prepared,
                turns=turns,
                status=status,
                holder=holder,
                overhead=overhead,
                extra=extra,
            )
        )()
        return body
