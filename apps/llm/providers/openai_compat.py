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
            # The SDK's generic POST, its documented way to send a body as is, rather than
            # chat.completions.create(): create()'s type-driven transform walks every message and
            # tool schema to hand back this same JSON, and its typed chunks cost a pydantic
            # construct each; together ~2 ms of a first token. AsyncStream[object] yields each
            # chunk as the JSON it was; auth, timeouts, SSE decoding and error mapping stay the SDK's.
            stream = await self._client().post(
                "/chat/completions", cast_to=object, body=arguments, stream=True, stream_cls=_ChunkStream
            )
            async with stream:
                async for chunk in stream:
                    if not isinstance(chunk, dict):
                        continue
                    usage = chunk.get("usage")
                    if isinstance(usage, dict):
                        yield UsageReport(_count(usage, "prompt_tokens"), _count(usage, "completion_tokens"))
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") if isinstance(choice, dict) else None
                        if not isinstance(delta, dict):
                            continue
                        content = delta.get("content")
                        if content and isinstance(content, str):
                            yield TextDelta(content)
                        for part in delta.get("tool_calls") or ():
                            if isinstance(part, dict):
                                _merge_tool_call(pending, part)
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


_ChunkStream = openai.AsyncStream[object]


def _count(usage: dict[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) else 0


def _merge_tool_call(pending: dict[int, dict[str, str]], part: dict[str, Any]) -> None:
    index = part.get("index")
    slot = pending.setdefault(index if isinstance(index, int) else 0, {"id": "", "name": "", "arguments": ""})
    if isinstance(part.get("id"), str) and part["id"]:
        slot["id"] = part["id"]
    function = part.get("function")
    if isinstance(function, dict):
        if isinstance(function.get("name"), str):
            slot["name"] += function["name"]
        if isinstance(function.get("arguments"), str):
            slot["arguments"] += function["arguments"]


def _reason(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return f"{exc.status_code} {error['message']}"
        if isinstance(error, str):
            return f"{exc.status_code} {error}"
    return f"{exc.status_code} {exc.message}"
