"""Anthropic's Messages API through the official `anthropic` SDK (streamed server-sent events)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic

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

DEFAULT_MAX_TOKENS = 1024


def to_anthropic_messages(messages: list[ChatMessage]) -> tuple[str | None, list[dict[str, Any]]]:
    """The system prompt apart; tool results become user turns of `tool_result` blocks."""
    system = "\n\n".join(m.content for m in messages if m.role == "system") or None
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            block = {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif message.role == "assistant" and message.tool_calls:
            blocks: list[dict[str, Any]] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks.extend(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in message.tool_calls
            )
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": message.role, "content": message.content})
    return system, out


class AnthropicProvider(SdkProvider):
    name = "anthropic"
    sdk_class = anthropic.AsyncAnthropic
    missing_key = "not-configured"

    async def stream(self, request: CompletionRequest) -> AsyncIterator[ProviderEvent]:
        system, messages = to_anthropic_messages(request.messages)
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "stream": True,
        }
        if system:
            arguments["system"] = system
        if request.tools:
            arguments["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
            if not request.allow_tool_calls:
                arguments["tool_choice"] = {"type": "none"}
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        blocks: dict[int, dict[str, str]] = {}
        input_tokens = output_tokens = 0
        try:
            stream = await self._client().messages.create(**arguments)
            async with stream:
                async for event in stream:
                    kind = event.type
                    if kind == "message_start":
                        input_tokens = event.message.usage.input_tokens or 0
                        output_tokens = event.message.usage.output_tokens or 0
                    elif kind == "content_block_start" and event.content_block.type == "tool_use":
                        block = event.content_block
                        blocks[event.index] = {"id": block.id, "name": block.name, "json": ""}
                    elif kind == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta" and delta.text:
                            yield TextDelta(delta.text)
                        elif delta.type == "input_json_delta" and event.index in blocks:
                            blocks[event.index]["json"] += delta.partial_json
                    elif kind == "content_block_stop" and event.index in blocks:
                        block_state = blocks.pop(event.index)
                        yield ToolCallRequest(
                            ToolCall(
                                id=block_state["id"],
                                name=block_state["name"],
                                arguments=parse_arguments(block_state["json"]),
                            )
                        )
                    elif kind == "message_delta" and event.usage is not None:
                        output_tokens = event.usage.output_tokens or output_tokens
        except anthropic.APITimeoutError:
            raise upstream_timeout(self.name, self.timeout) from None
        except anthropic.APIStatusError as exc:
            raise upstream_error(self.name, _reason(exc), upstream_status=exc.status_code) from None
        except anthropic.APIError as exc:
            raise upstream_error(self.name, failure_reason(exc)) from None
        yield UsageReport(input_tokens, output_tokens)


def _reason(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return f"{exc.status_code} {error['message']}"
    return f"{exc.status_code} {json.dumps(body) if body else exc.message}"
