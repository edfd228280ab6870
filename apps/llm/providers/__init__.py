"""Model providers behind one interface (`Provider.stream` / `Provider.complete`)."""

from __future__ import annotations

from apps.llm.providers.base import (
    ChatMessage,
    Completion,
    CompletionRequest,
    Provider,
    ProviderEvent,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolDefinition,
    UsageReport,
)

__all__ = [
    "ChatMessage",
    "Completion",
    "CompletionRequest",
    "Provider",
    "ProviderEvent",
    "TextDelta",
    "ToolCall",
    "ToolCallRequest",
    "ToolDefinition",
    "UsageReport",
]
