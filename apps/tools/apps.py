from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "apps.tools"
    label = "tools"
    verbose_name = "Tools"
    slop_capabilities = {"sse": True, "tools": {"builtin": ["calculator", "current_time"], "webhooks": True}}

    def slop_info(self, principal: Any) -> dict[str, Any]:
        from apps.tools.selectors import tools_for

        if principal is None:
            return {}
        return {"tools": [spec.id for spec in tools_for(principal=principal)]}
