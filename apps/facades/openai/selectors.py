"""What GET /v1/models lists: the team's models (the chat's own snapshot) and the agents the key
may execute, as `agent:<id>`."""

from __future__ import annotations

from typing import Any

from apps.agents.models import Agent
from apps.facades.openai.completions import AGENT_PREFIX
from apps.llm.selectors import chat_model_snapshots
from apps.tenants.access import readable
from apps.tenants.authentication import Principal


def openai_models(*, principal: Principal) -> list[dict[str, Any]]:
    owner = principal.tenant.slug
    models = chat_model_snapshots.get(int(principal.tenant.pk))
    listed = [
        {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": owner if model.source == "tenant" else "slop",
        }
        for name, model in sorted(models.items())
    ]
    ids = readable(principal, "agents", "execute")
    agents = Agent.objects.for_tenant(principal.tenant).only("slug", "created_at").order_by("slug")
    if ids is not None:
        agents = agents.filter(slug__in=ids)
    listed.extend(
        {
            "id": AGENT_PREFIX + agent.slug,
            "object": "model",
            "created": int(agent.created_at.timestamp()),
            "owned_by": owner,
        }
        for agent in agents
    )
    return listed
