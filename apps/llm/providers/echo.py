"""The built-in `echo` model: repeats the last user message word by word, no LLM needed.

A user message `/tool <tool_id> <json arguments>` makes it request that tool call instead, and after
the tool results come back it answers with them, so tool loops can be tried without an LLM.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

from apps.core.ids import new_id
from apps.llm.providers.base import (
    ChatMessage,
    CompletionRequest,
    Provider,
    ProviderEvent,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    UsageReport,
    estimate_tokens,
    parse_arguments,
)

_TOOL_COMMAND = re.compile(r"^/tool\s+(\S+)\s*(.*)$", re.DOTALL)
_WORDS = re.compile(r"\s*\S+\s*")


class EchoProvider(Provider):
    name = "echo"

    def __init__(self, *, delay_seconds: float = 0.0) -> None:
        self.delay_seconds = delay_seconds

    def _reply(self, messages: list[ChatMessage]) -> str | ToolCall:
        last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
        if last_user is None:
            return "(nothing to echo)"
        results = [m for m in messages[last_user + 1 :] if m.role == "tool"]
        if results:
            return " ".join(f"{m.name or 'tool'} returned: {m.content}" for m in results)
        text = messages[last_user].content
        command = _TOOL_COMMAND.match(text.strip())
        if command:
            return ToolCall(id=new_id("call"), name=command[1], arguments=parse_arguments(command[2].strip()))
        return text or "(empty message)"

    async def stream(self, request: CompletionRequest) -> AsyncIterator[ProviderEvent]:
        reply = self._reply(request.messages)
        input_tokens = sum(estimate_tokens(m.content) for m in request.messages)
        if isinstance(reply, ToolCall):
            yield ToolCallRequest(reply)
            yield UsageReport(input_tokens, estimate_tokens(json.dumps(reply.arguments)))
            return
        words = _WORDS.findall(reply) or [reply]
        if request.max_tokens is not None:
            words = words[: request.max_tokens]
        for word in words:
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            yield TextDelta(word)
        yield UsageReport(input_tokens, len(words))
