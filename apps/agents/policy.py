"""What an agent may do: its own configuration intersected with the caller's effective scope.

An agent never exceeds the key that calls it. Its configuration becomes a second set of scopes
(`tools`: "auto" → every tool, "none" → none, a list → those tools; `memory_prefix` and
`resources_prefix` → that part of memory and resources, empty → all of it), and the principal the
agent acts as allows an action only when the caller's scopes *and* the agent's allow it. Every
check downstream (the tools offered, a tool's execution, the memory and resource tools' prefixes)
reads `principal.scopes`, so nothing else needs to know about agents.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from apps.agents.models import Agent
from apps.tenants.authentication import Principal
from apps.tenants.scopes import (
    AREAS,
    PREFIX_AREAS,
    Action,
    EffectiveScopes,
    Scope,
    ScopeSet,
    intersect_prefixes,
)

# Areas an agent's configuration does not narrow: what the caller may do there, it may do.
_UNNARROWED = sorted(AREAS - {"tools", "memory", "resources"})


def agent_scope_set(agent: Agent) -> ScopeSet:
    scopes = [Scope(area=area, permission="*") for area in _UNNARROWED]
    tools: Any = agent.tools
    if tools == "auto" or tools is None:
        scopes.append(Scope(area="tools", permission="*"))
    elif isinstance(tools, list):
        for tool_id in tools:
            if isinstance(tool_id, str) and tool_id:
                scopes.append(Scope(area="tools", permission="execute", identifier=tool_id))
                scopes.append(Scope(area="tools", permission="read", identifier=tool_id))
    # "none" (or anything else): no tool at all.
    scopes.append(Scope(area="memory", permission="*", identifier=agent.memory_prefix or None))
    scopes.append(Scope(area="resources", permission="*", identifier=agent.resources_prefix or None))
    return ScopeSet(tuple(scopes))


@dataclass(frozen=True)
class AgentScopes(EffectiveScopes):
    """The caller's effective scopes narrowed once more by an agent's configuration."""

    caller: EffectiveScopes = field(default_factory=lambda: EffectiveScopes(granted=ScopeSet(())))
    agent: ScopeSet = field(default_factory=lambda: ScopeSet(()))
    agent_id: str = ""

    def allows(self, action: Action) -> bool:
        return self.caller.allows(action) and self.agent.allows(action)

    def prefixes(self, area: str, permission: str) -> list[str] | None:
        return intersect_prefixes(
            self.caller.prefixes(area, permission),
            self.agent.prefixes(area, permission),
            exact=area not in PREFIX_AREAS,
        )

    def describe(self) -> dict[str, list[str] | None]:
        return {**self.caller.describe(), "agent": self.agent.strings()}


def agent_principal(principal: Principal, agent: Agent) -> Principal:
    """The principal an agent acts as during a run: the caller, narrowed by the agent."""
    narrowed = AgentScopes(
        granted=principal.scopes.granted,
        requested=principal.scopes.requested,
        caller=principal.scopes,
        agent=agent_scope_set(agent),
        agent_id=agent.slug,
    )
    return replace(principal, scopes=narrowed)


def may_execute_agent(principal: Principal, slug: str) -> bool:
    return bool(principal.scopes.allows(Action("agents", "execute", slug)))
