"""From a chat request's `agent` / `pattern` / `agents` / `aggregator` / `branches` to a `Plan`.

Everything that can be wrong is found here, before anything is stored or streamed: an unknown
agent (another tenant's is unknown too), a pattern without agents, a field the pattern does not
use, a cycle (an agent twice in one pattern, a branch back to the first agent, a router among its
own candidates), a bad regex — each a 400 naming the problem — and an agent the caller may not run
(403 `agents.<id>.execute`). Each agent that may run (handoff targets included) is prepared once:
its model, its instructions, the principal it acts as (policy.py) and the tools it is offered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apps.agents.limits import RunLimits
from apps.agents.models import Agent
from apps.agents.policy import agent_principal, may_execute_agent
from apps.agents.routing import Candidate, transfer_name
from apps.core.errors import ApplicationError
from apps.llm.selectors import ResolvedModel, model_resolve
from apps.tenants.access import scope_violation
from apps.tenants.authentication import Principal
from apps.tenants.scopes import Action

PATTERNS = ("route", "sequential", "parallel", "branching")
CONDITIONS = ("contains", "regex", "label")
MAX_REGEX_CHARS = 500

# What the host (the chat layer) offers an agent: tool function name → an offered tool with a
# `.definition` (apps.chat.toolbox.OfferedTool), for a principal and the request's tool selection.
OfferTools = Callable[[Principal, Any], dict[str, Any]]


@dataclass(frozen=True)
class AgentRequest:
    """The agent fields of one chat request (validated shapes, not yet meanings)."""

    agent: str | None = None
    agent_given: bool = False  # `agent` was in the body (null or "" releases a thread's holder)
    pattern: str | None = None
    agents: list[str] | None = None
    aggregator: str | None = None
    branches: list[dict[str, Any]] | None = None
    model: str | None = None
    tools: Any = "auto"
    temperature: float | None = None
    max_tokens: int | None = None
    thread_holder: str = ""  # the agent holding the thread, if any

    @property
    def names_agents(self) -> bool:
        return bool(self.agent or self.pattern or self.agents or self.aggregator or self.branches)


@dataclass
class PreparedAgent:
    slug: str
    name: str
    description: str
    model: ResolvedModel
    instructions: str
    principal: Principal
    offered: dict[str, Any]
    handoffs: dict[str, str] = field(default_factory=dict)  # transfer function name → agent id
    temperature: float | None = None
    max_tokens: int | None = None

    @property
    def candidate(self) -> Candidate:
        return Candidate(slug=self.slug, name=self.name, description=self.description)


@dataclass(frozen=True)
class Branch:
    agent: str
    condition: str | None = None  # contains | regex | label; None: the default branch
    value: str = ""
    compiled: re.Pattern[str] | None = None

    def describe(self) -> str:
        if self.condition is None:
            return "default branch"
        return f"{self.condition} {self.value!r}"

    def matches(self, output: str, label: str) -> bool:
        if self.condition == "contains":
            return self.value.casefold() in output.casefold()
        if self.condition == "regex":
            return self.compiled is not None and self.compiled.search(output) is not None
        if self.condition == "label":
            return label == self.value.strip().casefold()
        return True


@dataclass
class Plan:
    pattern: str  # single | route | sequential | parallel | branching
    agents: dict[str, PreparedAgent]  # every agent that may run, handoff targets included
    order: list[str] = field(default_factory=list)  # sequential steps, parallel agents, route candidates
    first: str | None = None  # the single agent, the branching first step, the route's router agent
    aggregator: str | None = None
    branches: list[Branch] = field(default_factory=list)
    router_model: ResolvedModel | None = None
    limits: RunLimits = field(default_factory=RunLimits.from_settings)
    held: bool = False  # the agent is the thread's holder (the request named none)


def _invalid(field_name: str, message: str) -> ApplicationError:
    return ApplicationError(
        f"Invalid request: {field_name}: {message}",
        code="validation_error",
        status=400,
        extra={"details": {field_name: [message]}},
    )


def _unknown_agent(slug: str, field_name: str) -> ApplicationError:
    return ApplicationError(
        f"Unknown agent {slug!r} (in {field_name})",
        code="unknown_agent",
        status=400,
        extra={"agent": slug, "details": {field_name: [f"Unknown agent {slug!r}."]}},
    )


def _cycle(field_name: str, message: str) -> ApplicationError:
    return ApplicationError(
        f"Agent cycle in {field_name}: {message}",
        code="agent_cycle",
        status=400,
        extra={"details": {field_name: [message]}},
    )


def _shape(request: AgentRequest) -> None:
    """Which fields each pattern takes; any other is refused rather than ignored."""
    pattern = request.pattern
    if pattern is None:
        for name, value in (("agents", request.agents), ("aggregator", request.aggregator)):
            if value:
                raise _invalid(name, f'Needs a "pattern" ({", ".join(PATTERNS)}).')
        if request.branches:
            raise _invalid("branches", 'Needs "pattern": "branching".')
        return
    if pattern in ("sequential", "parallel"):
        if not request.agents:
            raise _invalid("agents", f"The {pattern} pattern needs at least one agent.")
        if request.agent:
            raise _invalid("agent", f'The {pattern} pattern takes its agents in "agents" only.')
    if pattern != "parallel" and request.aggregator:
        raise _invalid("aggregator", "Only the parallel pattern takes an aggregator.")
    if pattern != "branching" and request.branches:
        raise _invalid("branches", "Only the branching pattern takes branches.")
    if pattern == "route" and not request.agents and not request.agent:
        raise _invalid(
            "agents", 'The route pattern needs candidate "agents" (or a router "agent" with handoffs).'
        )
    if pattern == "branching":
        if not request.agent:
            raise _invalid("agent", 'The branching pattern needs its first agent in "agent".')
        if not request.branches:
            raise _invalid("branches", "The branching pattern needs at least one branch.")
        if request.agents:
            raise _invalid("agents", 'The branching pattern takes "agent" and "branches", not "agents".')


def _duplicates(names: list[str], field_name: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _cycle(field_name, f"{name!r} appears twice; one run gives each agent one turn here.")
        seen.add(name)


def _branches(raw: list[dict[str, Any]], first: str) -> list[Branch]:
    branches: list[Branch] = []
    defaults = 0
    for index, item in enumerate(raw):
        where = f"branches[{index}]"
        agent = item["agent"]
        if agent == first:
            raise _cycle(where, f"The branch goes back to the first agent {first!r}.")
        when = item.get("when")
        if not when:
            defaults += 1
            if defaults > 1:
                raise _invalid(where, 'Only one default branch (without "when").')
            branches.append(Branch(agent=agent))
            continue
        ((condition, value),) = when.items()
        compiled = None
        if condition == "regex":
            if len(value) > MAX_REGEX_CHARS:
                raise _invalid(f"{where}.when.regex", f"At most {MAX_REGEX_CHARS} characters.")
            try:
                compiled = re.compile(value, re.IGNORECASE)
            except re.error as exc:
                raise _invalid(f"{where}.when.regex", f"Not a regular expression: {exc}.") from None
        branches.append(Branch(agent=agent, condition=condition, value=value, compiled=compiled))
    # The default branch is tried last, wherever it was written.
    return [b for b in branches if b.condition is not None] + [b for b in branches if b.condition is None]


def plan_prepare(*, principal: Principal, request: AgentRequest, offer: OfferTools) -> Plan | None:
    """The plan for a chat request, or None for a plain chat (no agent named, none holding the thread)."""
    _shape(request)
    named: list[tuple[str, str]] = []  # (agent id, the field that names it)
    if request.agent:
        named.append((request.agent, "agent"))
    named.extend((slug, f"agents[{i}]") for i, slug in enumerate(request.agents or []))
    if request.aggregator:
        named.append((request.aggregator, "aggregator"))
    for index, branch in enumerate(request.branches or []):
        named.append((branch["agent"], f"branches[{index}].agent"))
    held = False
    if not named:
        if request.agent_given or not request.thread_holder:
            return None
        named.append((request.thread_holder, "thread"))
        held = True
    # The caller must be allowed to run every agent it names (a held thread: the one holding it).
    for slug, _ in named:
        if not may_execute_agent(principal, slug):
            raise scope_violation(Action("agents", "execute", slug))
    rows = {
        a.slug: a for a in Agent.objects.for_tenant(principal.tenant).filter(slug__in={s for s, _ in named})
    }
    for slug, where in named:
        if slug not in rows:
            if held:
                return None  # the holder was deleted since: the thread is a plain chat again
            raise _unknown_agent(slug, where)

    pattern = request.pattern or "single"
    plan = Plan(pattern=pattern, agents={}, held=held, limits=RunLimits.for_tenant(principal.tenant))
    if pattern == "single":
        plan.first = named[0][0]
    elif pattern in ("sequential", "parallel"):
        plan.order = list(request.agents or [])
        _duplicates(plan.order, "agents")
        plan.aggregator = request.aggregator
        if plan.aggregator and plan.aggregator in plan.order:
            raise _cycle("aggregator", f"{plan.aggregator!r} is also one of the parallel agents.")
    elif pattern == "route":
        plan.first = request.agent
        if request.agents:
            plan.order = list(request.agents)
        else:
            router = rows[request.agent or ""]
            plan.order = [s for s in _handoff_ids(router) if may_execute_agent(principal, s)]
            if not plan.order:
                raise _invalid("agent", f"The router {router.slug!r} has no handoffs the caller may run.")
            rows.update(_load(principal, set(plan.order)))
            plan.order = [s for s in plan.order if s in rows]
            if not plan.order:
                raise _invalid("agent", f"The router {router.slug!r} has no handoffs that exist.")
        _duplicates(plan.order, "agents")
        if plan.first and plan.first in plan.order:
            raise _cycle("agent", f"The router {plan.first!r} is one of its own candidates.")
    else:  # branching
        plan.first = request.agent
        plan.branches = _branches(request.branches or [], request.agent or "")

    _prepare_agents(plan, rows, principal=principal, request=request, offer=offer)
    if pattern == "route" and plan.first is None:
        plan.router_model = model_resolve(tenant=principal.tenant, name=request.model or None)
    return plan


def _load(principal: Principal, slugs: set[str]) -> dict[str, Agent]:
    return {a.slug: a for a in Agent.objects.for_tenant(principal.tenant).filter(slug__in=slugs)}


def _handoff_ids(agent: Agent) -> list[str]:
    handoffs = agent.handoffs if isinstance(agent.handoffs, list) else []
    return [h for h in dict.fromkeys(handoffs) if isinstance(h, str) and h and h != agent.slug]


def _prepare_agents(
    plan: Plan, rows: dict[str, Agent], *, principal: Principal, request: AgentRequest, offer: OfferTools
) -> None:
    """Prepares the plan's agents and, transitively, the handoff targets the caller may run."""
    todo = list(rows)
    loaded = dict(rows)
    while todo:
        slug = todo.pop(0)
        if slug in plan.agents:
            continue
        agent = loaded[slug]
        targets = [t for t in _handoff_ids(agent) if may_execute_agent(principal, t)]
        missing = [t for t in targets if t not in loaded]
        if missing:
            loaded.update(
                {a.slug: a for a in Agent.objects.for_tenant(principal.tenant).filter(slug__in=missing)}
            )
        targets = [t for t in targets if t in loaded]  # a handoff to a deleted agent is not offered
        plan.agents[slug] = _prepare_one(agent, targets, principal=principal, request=request, offer=offer)
        todo.extend(t for t in targets if t not in plan.agents)


def _prepare_one(
    agent: Agent, handoffs: list[str], *, principal: Principal, request: AgentRequest, offer: OfferTools
) -> PreparedAgent:
    try:
        model = model_resolve(tenant=principal.tenant, name=agent.model or request.model or None)
    except ApplicationError as exc:
        if agent.model:
            raise ApplicationError(
                f"Agent {agent.slug!r} names a model this tenant cannot use: {exc.message}",
                code=exc.code,
                status=exc.status,
                extra={**exc.extra, "agent": agent.slug},
            ) from None
        raise
    acting = agent_principal(principal, agent)
    max_tokens = agent.max_tokens or request.max_tokens
    if request.max_tokens and agent.max_tokens:
        max_tokens = min(request.max_tokens, agent.max_tokens)
    if model.max_output_tokens is not None:
        max_tokens = min(max_tokens or model.max_output_tokens, model.max_output_tokens)
    return PreparedAgent(
        slug=agent.slug,
        name=agent.name,
        description=agent.description,
        model=model,
        instructions=agent.instructions,
        principal=acting,
        offered=offer(acting, request.tools or "auto"),
        handoffs={transfer_name(target): target for target in reversed(handoffs)},
        temperature=agent.temperature if agent.temperature is not None else request.temperature,
        max_tokens=max_tokens,
    )
