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
        from apps.agents.selectors import agent_summaries_readable_by

        if principal is None:
            return {}
        return {"agents": agent_summaries_readable_by(principal=principal)}

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.agents.models import Agent
        from apps.agents.selectors import agent_summary_snapshots

        def forget(sender: Any, instance: Agent, **kwargs: Any) -> None:
            agent_summary_snapshots.forget_changed(instance.tenant_id)

        post_save.connect(forget, sender=Agent, weak=False, dispatch_uid="agents-forget-summaries")
        post_delete.connect(forget, sender=Agent, weak=False, dispatch_uid="agents-forget-summaries")
