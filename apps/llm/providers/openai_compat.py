"""OpenAI-compatible chat APIs (OpenAI, Ollama, vLLM, llama.cpp, LM Studio, OpenRouter, ...) through
the official `openai` SDK pointed at a base URL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai

from apps.llm.providers.base import (
    ChatMessage,
    CompletionRequest,
    ProviderEvent,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    UsageReport,
    parse_arguments,
    upstream_error,
    upstream_timeout,
)
from apps.llm.providers.clients import SdkProvider, failure_reason


def to_openai_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content})
        elif message.role == "assistant" and message.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    "content": message.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                        }
                        for call in message.tool_calls
                    ],
                }
            )
        else:
            out.append({"role": message.role, "content": message.content})
    return out


class OpenAICompatibleProvider(SdkProvider):
    name = "openai"
    sdk_class = openai.AsyncOpenAI
    missing_key = "not-needed"

    async def stream(self, request: CompletionRequest) -> AsyncIterator[ProviderEvent]:
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": to_openai_messages(request.messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            arguments["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
            if not request.allow_tool_calls:
                arguments["tool_choice"] = "none"
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        if request.max_tokens is not None:
            arguments["max_tokens"] = request.max_tokens
        # Tool-call deltas arrive in pieces keyed by index: the id and name first, then the
        # arguments as JSON text in fragments.
        pending: dict[int, dict[str, str]] = {}
        try:
            stream = await self._client().chat.completions.create(**arguments)
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        yield UsageReport(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                    for choice in chunk.choices or []:
                        delta = choice.delta
                        if delta is None:
                            continue
                        if delta.content:
                            yield TextDelta(delta.content)
                        for part in delta.tool_calls or []:
                            slot = pending.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                            if part.id:
                                slot["id"] = part.id
                            if part.function is not None:
                                slot["name"] += part.function.name or ""
                                slot["arguments"] += part.function.arguments or ""
        except openai.APITimeoutError:
            raise upstream_timeout(self.name, self.timeout) from None
        except openai.APIStatusError as exc:
            raise upstream_error(self.name, _reason(exc), upstream_status=exc.status_code) from None
        except openai.APIError as exc:
            raise upstream_error(self.name, failure_reason(exc)) from None
        for index in sorted(pending):
            slot = pending[index]
            yield ToolCallRequest(
                ToolCall(
                    id=slot["id"] or f"call_{index}",
                    name=slot["name"],
                    arguments=parse_arguments(slot["arguments"]),
                )
            )


def _reason(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return f"{exc.status_code} {error['message']}"
        if isinstance(error, str):
            return f"{exc.status_code} {error}"
    return f"{exc.status_code} {exc.message}"
