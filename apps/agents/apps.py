from __future__ import annotations

from typing import Any

from django.apps import AppConfig

# PROTOCOL.md §10/§11: "single" is one agent (`"agent": id`), the others are `"pattern"` values.
PATTERNS = ["single", "route", "sequential", "parallel", "branching"]


class AgentsConfig(AppConfig):
    name = "apps.agents"
    label = "agents"
    verbose_name = "Agents"

    def slop_capabilities(self, principal: Any) -> dict[str, Any]:
        return {"patterns": list(PATTERNS)}

    def slop_info(self, principal: Any) -> dict[str, Any]:
        """With a key, GET /info lists the agents the caller may read."""
        from apps.agents.selectors import agents_readable_by

        if principal is None:
            return {}
        return {
            "agents": [
                {"id": agent.slug, "name": agent.name, "description": agent.description}
                for agent in agents_readable_by(principal=principal)
            ]
        }
