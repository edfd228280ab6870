"""Executing a `Plan`: one agent, route, sequential, parallel or branching, with handoffs.

`AgentRun.events()` yields `AgentStarted` when an agent takes its turn and `AgentEvent` for each
content / tool event of that turn (the chat layer renders both as PROTOCOL.md §5 events); `steps`
holds every turn's text, tool calls and usage as it goes, so whatever happened is there to store
even when the run is cancelled or stops at a limit.

The orchestration runs in a task of its own, feeding a queue the caller reads: the total-time bound
(`asyncio.timeout`) then applies to the orchestration alone, parallel branches interleave their
events in the order they happen, and a caller that stops reading (cancel, disconnect) cancels every
branch. Tools run through the host's `execute_tool` with the principal of the agent that calls them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from apps.agents.limits import AgentLimitExceeded
from apps.agents.orchestration.plan import Plan, PreparedAgent
from apps.agents.routing import RouteDecision, route_by_model, route_by_similarity, transfer_definition
from apps.llm.factory import provider_for
from apps.llm.loop import LoopEvent, LoopState, ToolOutcome, run_tool_loop
from apps.llm.providers.base import ChatMessage, CompletionRequest, ToolCall
from apps.tenants.authentication import Principal

ExecuteTool = Callable[[Principal, dict[str, Any], ToolCall], Awaitable[ToolOutcome]]
ToThread = Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]


@dataclass(frozen=True)
class AgentStarted:
    agent: str
    step: int
    pattern: str
    reason: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class AgentEvent:
    agent: str
    step: int
    event: LoopEvent


RunEvent = AgentStarted | AgentEvent


@dataclass
class StepRecord:
    """One agent's turn: what it said and did, and what it cost."""

    agent: str
    step: int
    model: str
    state: LoopState = field(default_factory=LoopState)
    finished: bool = False
    handoff_to: str | None = None
    reason: str | None = None
    score: float | None = None

    @property
    def status(self) -> str:
        return "complete" if self.finished else "incomplete"

    def as_json(self) -> dict[str, Any]:
        why: dict[str, Any] = {"reason": self.reason} if self.reason else {}
        if self.score is not None:
            why["score"] = self.score
        return {
            "agent": self.agent,
            "step": self.step,
            "content": self.state.content,
            "tool_calls": self.state.tool_calls,
            "usage": {"input_tokens": self.state.input_tokens, "output_tokens": self.state.output_tokens},
            "model": self.model,
            "status": self.status,
            **why,
        }


_END = object()


def combined_answers(records: list[StepRecord]) -> str:
    """Every parallel answer, each under its agent's id (the reply when there is no aggregator)."""
    return "\n\n".join(f"[{r.agent}]\n{r.state.content}" for r in records)


class AgentRun:
    def __init__(
        self,
        plan: Plan,
        *,
        conversation: list[ChatMessage],
        tenant_id: int,
        execute_tool: ExecuteTool,
        to_thread: ToThread,
        max_tool_iterations: int,
    ) -> None:
        self.plan = plan
        self.conversation = conversation
        self.tenant_id = tenant_id
        self.execute_tool = execute_tool
        self.to_thread = to_thread
        self.max_tool_iterations = max_tool_iterations
        self.steps: list[StepRecord] = []
        self.reply: str | None = None  # the final reply, once known
        self.final_agent: str | None = None  # who gave it (none for merged parallel answers)
        self.merged: list[StepRecord] = []  # parallel answers merged without an aggregator
        self.overhead = LoopState()  # the router model's tokens (no agent's turn)
        self.handoffs = 0
        self.steps_started = 0
        self._limit_error: AgentLimitExceeded | None = None

    # --- what the caller reads -----------------------------------------------------------------

    @property
    def produced_anything(self) -> bool:
        return any(r.state.produced_anything for r in self.steps)

    def reply_content(self) -> str:
        if self.reply is not None:
            return self.reply
        if self.merged:
            return combined_answers(self.merged)
        # Stopped part way: the latest turn's text is the best reply there is.
        for record in reversed(self.steps):
            if record.state.content:
                return record.state.content
        return ""

    async def events(self) -> AsyncIterator[RunEvent]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        task = asyncio.get_running_loop().create_task(self._drive(queue))
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # --- the orchestration -----------------------------------------------------------------------

    async def _drive(self, queue: asyncio.Queue[Any]) -> None:
        limits = self.plan.limits
        try:
            try:
                async with asyncio.timeout(limits.max_seconds):
                    await self._pattern(queue.put_nowait)
            except TimeoutError:
                raise AgentLimitExceeded(
                    f"The agents' run took longer than {limits.max_seconds:g} seconds"
                    " (SLOP_AGENT_MAX_SECONDS)",
                    limit="seconds",
                    value=limits.max_seconds,
                ) from None
        except Exception as exc:
            queue.put_nowait(exc)
            return
        queue.put_nowait(_END)

    async def _pattern(self, emit: Callable[[RunEvent], None]) -> None:
        plan = self.plan
        if plan.pattern == "single":
            record = await self._chain(emit, plan.first or "", 1, self.conversation, reason=None)
            self._final(record)
        elif plan.pattern == "route":
            decision = await self._route()
            record = await self._chain(
                emit, decision.agent, 1, self.conversation, reason=decision.reason, score=decision.score
            )
            self._final(record)
        elif plan.pattern == "sequential":
            previous: StepRecord | None = None
            for slug in plan.order:
                messages = self._with_output(previous)
                previous = await self._chain(emit, slug, self._next_step(), messages, reason=None)
            assert previous is not None
            self._final(previous)
        elif plan.pattern == "parallel":
            await self._parallel(emit)
        else:
            await self._branching(emit)

    def _with_output(self, previous: StepRecord | None) -> list[ChatMessage]:
        """The conversation, plus the previous step's output as the next input."""
        if previous is None:
            return list(self.conversation)
        return [*self.conversation, ChatMessage(role="user", content=previous.state.content)]

    def _final(self, record: StepRecord) -> None:
        self.reply = record.state.content
        self.final_agent = record.agent

    def _next_step(self) -> int:
        return len(self.steps) + 1

    async def _route(self) -> RouteDecision:
        plan = self.plan
        candidates = [plan.agents[slug].candidate for slug in plan.order]
        router = plan.agents[plan.first] if plan.first else None
        model = router.model if router is not None else plan.router_model
        message = next((m.content for m in reversed(self.conversation) if m.role == "user"), "")
        why = ""
        if model is not None and model.provider != "echo":
            decision = await route_by_model(
                provider=provider_for(model),
                model=model.upstream_model,
                conversation=self.conversation,
                candidates=candidates,
                instructions=router.instructions if router is not None else "",
            )
            self.overhead.input_tokens += decision.input_tokens
            self.overhead.output_tokens += decision.output_tokens
            if decision.agent:
                return decision
            why = "the router model chose no agent; "

        def by_similarity() -> RouteDecision:
            return route_by_similarity(message, candidates, tenant_id=self.tenant_id, why=why)

        decision = await self.to_thread(by_similarity)()
        assert isinstance(decision, RouteDecision)
        return decision

    async def _parallel(self, emit: Callable[[RunEvent], None]) -> None:
        plan, limits = self.plan, self.plan.limits
        if len(plan.order) > limits.max_fanout:
            raise AgentLimitExceeded(
                f"{len(plan.order)} parallel agents exceed the fan-out limit of {limits.max_fanout}"
                " (SLOP_AGENT_MAX_FANOUT)",
                limit="fanout",
                value=limits.max_fanout,
            )
        gate = asyncio.Semaphore(limits.parallel_concurrency)
        # Step numbers follow the order the agents were listed in, whenever each one starts.
        numbers = {slug: index + 1 for index, slug in enumerate(plan.order)}

        async def branch(slug: str) -> StepRecord:
            async with gate:
                return await self._chain(emit, slug, numbers[slug], list(self.conversation), reason=None)

        tasks = [asyncio.get_running_loop().create_task(branch(slug)) for slug in plan.order]
        try:
            results = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        if plan.aggregator:
            answers = ChatMessage(role="user", content=combined_answers(list(results)))
            record = await self._chain(
                emit, plan.aggregator, len(plan.order) + 1, [*self.conversation, answers], reason="aggregator"
            )
            self._final(record)
        else:
            self.merged = list(results)
            self.reply = combined_answers(self.merged)

    async def _branching(self, emit: Callable[[RunEvent], None]) -> None:
        plan = self.plan
        first = await self._chain(emit, plan.first or "", 1, list(self.conversation), reason=None)
        output = first.state.content
        label = _label(output)
        for branch in plan.branches:
            if branch.matches(output, label):
                record = await self._chain(
                    emit, branch.agent, self._next_step(), self._with_output(first), reason=branch.describe()
                )
                self._final(record)
                return
        self._final(first)  # no branch matched and there is no default: the first answer stands

    # --- one agent's turn, and the handoffs it makes --------------------------------------------

    async def _chain(
        self,
        emit: Callable[[RunEvent], None],
        slug: str,
        step: int,
        messages: list[ChatMessage],
        *,
        reason: str | None,
        score: float | None = None,
    ) -> StepRecord:
        """Runs the agent, then whoever it hands off to; returns the last turn of the chain."""
        record = await self._turn(emit, slug, step, messages, reason=reason, score=score)
        while record.handoff_to is not None:
            limits = self.plan.limits
            self.handoffs += 1
            if self.handoffs > limits.max_handoffs:
                raise AgentLimitExceeded(
                    f"Handoff {self.handoffs} ({record.agent} → {record.handoff_to}) exceeds the limit of"
                    f" {limits.max_handoffs} (SLOP_AGENT_MAX_HANDOFFS)",
                    limit="handoffs",
                    value=limits.max_handoffs,
                )
            as_text = self.plan.agents[record.handoff_to].model.provider == "anthropic"
            messages = [*messages, *_handoff_messages(record, as_text=as_text)]
            record = await self._turn(
                emit,
                record.handoff_to,
                self._next_step() if self.plan.pattern != "parallel" else step,
                messages,
                reason=f"handoff from {record.agent}",
            )
        return record

    async def _turn(
        self,
        emit: Callable[[RunEvent], None],
        slug: str,
        step: int,
        messages: list[ChatMessage],
        *,
        reason: str | None,
        score: float | None = None,
    ) -> StepRecord:
        limits = self.plan.limits
        if self.steps_started >= limits.max_steps:
            raise AgentLimitExceeded(
                f"The run would take more than {limits.max_steps} agent steps (SLOP_AGENT_MAX_STEPS)",
                limit="steps",
                value=limits.max_steps,
            )
        self.steps_started += 1
        agent = self.plan.agents[slug]
        record = StepRecord(agent=slug, step=step, model=agent.model.name, reason=reason, score=score)
        self.steps.append(record)
        emit(AgentStarted(agent=slug, step=step, pattern=self.plan.pattern, reason=reason, score=score))
        tools = [tool.definition for tool in agent.offered.values()]
        tools.extend(
            transfer_definition(target, self.plan.agents[target].description)
            for target in agent.handoffs.values()
        )
        system = [ChatMessage(role="system", content=agent.instructions)] if agent.instructions else []
        request = CompletionRequest(
            model=agent.model.upstream_model,
            messages=[*system, *messages],
            tools=tools,
            temperature=agent.temperature,
            max_tokens=agent.max_tokens,
        )

        async def execute(call: ToolCall) -> ToolOutcome:
            return await self._execute(agent, record, call)

        loop = run_tool_loop(
            provider=provider_for(agent.model),
            request=request,
            execute_tool=execute,
            max_iterations=self.max_tool_iterations,
            state=record.state,
        )
        async for event in loop:
            emit(AgentEvent(agent=slug, step=step, event=event))
        record.finished = True
        return record

    async def _execute(self, agent: PreparedAgent, record: StepRecord, call: ToolCall) -> ToolOutcome:
        target = agent.handoffs.get(call.name)
        if target is not None and call.name not in agent.offered:
            if record.handoff_to is None:
                record.handoff_to = target
                return ToolOutcome(result={"transferred_to": target}, ends_turn=True)
            return ToolOutcome(
                error={"error": f"Already transferred to {record.handoff_to}", "code": "handoff_refused"}
            )
        return await self.execute_tool(agent.principal, agent.offered, call)


def _handoff_messages(record: StepRecord, *, as_text: bool = False) -> list[ChatMessage]:
    """What the next agent sees of a handoff: the turn's text, the transfer call and its result.

    `as_text`: a note instead of the call, for a provider that refuses a history with calls to
    tools the request does not describe (Anthropic): the receiver is not offered that transfer."""
    marker = {"transferred_to": record.handoff_to}
    transfer = next((c for c in reversed(record.state.tool_calls) if c.get("result") == marker), None)
    if as_text:
        note = f"[{record.agent} handed the conversation over to {record.handoff_to}]"
        reason = (transfer or {}).get("arguments", {}).get("reason")
        if isinstance(reason, str) and reason:
            note = f"{note[:-1]}: {reason}]"
        text = "\n\n".join(part for part in (record.state.content, note) if part)
        return [ChatMessage(role="assistant", content=text)]
    if transfer is None:
        return [ChatMessage(role="assistant", content=record.state.content)] if record.state.content else []
    call = ToolCall(id=transfer["id"], name=transfer["tool"], arguments=transfer.get("arguments") or {})
    return [
        ChatMessage(role="assistant", content=record.state.content, tool_calls=(call,)),
        ChatMessage(
            role="tool",
            content=json.dumps({"result": transfer["result"]}),
            tool_call_id=call.id,
            name=call.name,
        ),
    ]


def _label(output: str) -> str:
    """A classifier's answer as a label: its first line, trimmed of spaces and punctuation."""
    first_line = output.strip().splitlines()[0] if output.strip() else ""
    return first_line.strip().strip(".!:;,\"'`*").strip().casefold()
