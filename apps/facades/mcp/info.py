"""How GET /info announces the MCP door (capabilities.doors and capabilities.mcp)."""

from __future__ import annotations

from typing import Any

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

MCP_DOOR: dict[str, Any] = {
    "url": "/mcp",
    "transport": "streamable-http",
    "protocol_versions": [*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS],
    "authentication": "Authorization: Bearer <api key>",
    "resource_metadata": "/.well-known/oauth-protected-resource/mcp",
    "offers": ["tools", "resources", "resource templates", "memory_search", "memory_write", "ask_<agent>"],
}


def mcp_capabilities() -> dict[str, Any]:
    return {"doors": ["mcp"], "mcp": dict(MCP_DOOR, protocol_versions=list(MCP_DOOR["protocol_versions"]))}
