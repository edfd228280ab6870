"""What a caller (an API client or a model during /chat) needs to know about one tool."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ToolSpec:
    id: str
    description: str
    schema: dict[str, Any]
    safe: bool
    long_running: bool
    kind: str  # "builtin" or "webhook"
    enabled: bool = True
    timeout_seconds: float = 10.0
    example: Any = None
    webhook_url: str = ""
    row_id: int | None = None  # the Tool row, when there is one
    created_at: datetime | None = None
    updated_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def parameters(self) -> dict[str, Any]:
        """The seed's `parameters`: name → JSON-Schema property."""
        properties = self.schema.get("properties", {})
        return properties if isinstance(properties, dict) else {}
