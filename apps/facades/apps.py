from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class FacadesConfig(AppConfig):
    """Other doors to the same tenant (PROTOCOL.md §13): /mcp and the OpenAI API at /v1, over the
    same services, keys and scopes as the SLOP endpoints."""

    name = "apps.facades"
    label = "facades"
    verbose_name = "MCP and OpenAI doors"

    def slop_capabilities(self, principal: Any) -> dict[str, Any]:
        from apps.facades.mcp.info import mcp_capabilities
        from apps.facades.openai.info import openai_capabilities

        openai, mcp = openai_capabilities(), mcp_capabilities()
        return {**openai, **mcp, "doors": [*openai["doors"], *mcp["doors"]]}
