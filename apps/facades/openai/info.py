"""How GET /info announces the OpenAI door (capabilities.doors and capabilities.openai)."""

from __future__ import annotations

from typing import Any

OPENAI_DOOR: dict[str, Any] = {
    "base_url": "/v1",
    "endpoints": ["GET /v1/models", "POST /v1/chat/completions"],
    "authentication": "Authorization: Bearer <api key>",
    "agents": 'model "agent:<id>"',
}


def openai_capabilities() -> dict[str, Any]:
    # `doors` is a list so that each door's entry merges with the others' (apps/core/info.py).
    return {"doors": ["openai"], "openai": dict(OPENAI_DOOR)}
