from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "apps.tools"
    label = "tools"
    verbose_name = "Tools"

    def slop_capabilities(self, principal: Any) -> dict[str, Any]:
        # Every tenant has every built-in; webhook tools are registered with PUT /tools/:id;
        # job progress streams as SSE.
        from apps.tools.builtins import BUILTINS

        return {"sse": True, "tools": {"builtin": sorted(BUILTINS), "webhooks": True}}

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.tools import tasks  # noqa: F401  registers the Celery tasks jobs.py sends by name
        from apps.tools.models import Tool
        from apps.tools.selectors import chat_tool_snapshots

        def forget(sender: Any, instance: Tool, **kwargs: Any) -> None:
            chat_tool_snapshots.forget_changed(instance.tenant_id)

        post_save.connect(forget, sender=Tool, weak=False, dispatch_uid="tools-forget-chat-snapshot")
        post_delete.connect(forget, sender=Tool, weak=False, dispatch_uid="tools-forget-chat-snapshot")

    def slop_info(self, principal: Any) -> dict[str, Any]:
        from apps.tools.selectors import tools_for

        if principal is None:
            return {}
        return {"tools": [spec.id for spec in tools_for(principal=principal, snapshot=True)]}
