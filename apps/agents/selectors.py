"""Reads of a team's agents. The scope decides which ids a list may show (`readable()`); the
query filters by them, so a list never loads an agent the caller may not read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.agents.models import Agent
from apps.core.errors import NotFound
from apps.core.pagination import Page, paginate
from apps.core.tenant_cache import TenantSnapshots
from apps.tenants.access import readable
from apps.tenants.authentication import Principal
from apps.tenants.models import Tenant


def agent_not_found(agent_id: str) -> NotFound:
    return NotFound(f"Agent not found: {agent_id}")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def agent_as_dict(agent: Agent) -> dict[str, Any]:
    """The agent as the API shows it (PROTOCOL.md §11); an empty model is null: the default."""
    return {
        "id": agent.slug,
        "name": agent.name,
        "description": agent.description,
        "model": agent.model or None,
        "instructions": agent.instructions,
        "tools": agent.tools,
        "memory_prefix": agent.memory_prefix,
        "resources_prefix": agent.resources_prefix,
        "handoffs": list(agent.handoffs or []),
        "temperature": agent.temperature,
        "max_tokens": agent.max_tokens,
        "created_at": _iso(agent.created_at),
        "updated_at": _iso(agent.updated_at),
    }


def agent_get(*, tenant: Tenant | int, agent_id: str) -> Agent:
    agent = Agent.objects.for_tenant(tenant).filter(slug=agent_id).first()
    if agent is None:
        raise agent_not_found(agent_id)
    return agent


def agent_ids_existing(*, tenant: Tenant | int, agent_ids: list[str]) -> set[str]:
    """Which of the ids are agents of the team."""
    return set(Agent.objects.for_tenant(tenant).filter(slug__in=agent_ids).values_list("slug", flat=True))


def agents_handing_off_to(*, tenant: Tenant | int, agent_id: str) -> list[str]:
    """The ids of the team's agents whose `handoffs` name this one."""
    queryset = Agent.objects.for_tenant(tenant).filter(handoffs__contains=[agent_id]).exclude(slug=agent_id)
    return sorted(queryset.values_list("slug", flat=True))


def agent_list(*, tenant: Tenant, readable_ids: list[str] | None, cursor: str | None, limit: int) -> Page:
    """Newest first; `readable_ids` None means every agent, a list only those ids."""
    queryset = Agent.objects.for_tenant(tenant)
    if readable_ids is not None:
        queryset = queryset.filter(slug__in=readable_ids)
    return paginate(queryset, cursor=cursor, limit=limit)


def _agent_summaries(tenant_id: int) -> tuple[tuple[str, str, str], ...]:
    rows = Agent.objects.for_tenant(tenant_id).order_by("slug").values_list("slug", "name", "description")
    return tuple(rows)


# GET /info with a key lists the caller's agents: a query on every /info, for rows that rarely
# change (half of that view's time). Dropped on every save and delete of an agent (apps.py).
agent_summary_snapshots = TenantSnapshots(_agent_summaries)


def agent_summaries_readable_by(*, principal: Principal) -> list[dict[str, str]]:
    """id, name and description of every agent the caller may read, from the tenant's snapshot."""
    ids = readable(principal, "agents")
    return [
        {"id": slug, "name": name, "description": description}
        for slug, name, description in agent_summary_snapshots.get(principal.tenant.pk)
        if ids is None or slug in ids
    ]
