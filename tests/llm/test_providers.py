"""Each provider against a local server speaking its real wire protocol."""

from __future__ import annotations

import asyncio

import pytest

from apps.core.errors import ApplicationError
from apps.llm.providers.anthropic_api import AnthropicProvider
from apps.llm.providers.base import ChatMessage, CompletionRequest, TextDelta, ToolDefinition
from apps.llm.providers.echo import EchoProvider
from apps.llm.providers.openai_compat import OpenAICompatibleProvider
from tests.llm.fake_upstreams import Upstream

CALCULATOR = ToolDefinition(
    name="calculator",
    description="Evaluates arithmetic",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
)


def _request(text: str, tools: list[ToolDefinition] | None = None) -> CompletionRequest:
    return CompletionRequest(
        model="test-model",
        messages=[ChatMessage("system", "Be brief"), ChatMessage("user", text)],
        tools=tools or [],
    )


class _Fresh:
    """A provider built anew for every event loop (an SDK client belongs to the loop it first ran on)."""

    def __init__(self, make) -> None:
        self.make = make
        self.name = make().name

    def stream(self, request):
        return self.make().stream(request)

    async def complete(self, request):
        return await self.make().complete(request)


def _providers(openai_upstream: Upstream, anthropic_upstream: Upstream) -> list:
    return [
        _Fresh(
            lambda: OpenAICompatibleProvider(
                base_url=openai_upstream.url, api_key=openai_upstream.api_key, timeout=1.5
            )
        ),
        _Fresh(
            lambda: AnthropicProvider(
                base_url=anthropic_upstream.url, api_key=anthropic_upstream.api_key, timeout=1.5
            )
        ),
    ]


def test_text_streams_in_pieces_and_usage_is_reported(
    openai_upstream: Upstream, anthropic_upstream: Upstream
) -> None:
    for provider in _providers(openai_upstream, anthropic_upstream):

        async def collect(p=provider) -> list:
            return [event async for event in p.stream(_request("hello there"))]

        events = asyncio.run(collect())
        pieces = [e.text for e in events if isinstance(e, TextDelta)]
        assert len(pieces) > 2, provider.name
        assert "".join(pieces) == "You said: hello there (2 messages)" or "".join(pieces) == (
            "You said: hello there (1 messages)"  # Anthropic takes the system prompt apart
        )
        completion = asyncio.run(provider.complete(_request("hello there")))
        assert completion.input_tokens > 0 and completion.output_tokens > 0


def test_streamed_tool_call_deltas_are_assembled(
    openai_upstream: Upstream, anthropic_upstream: Upstream
) -> None:
    for provider in _providers(openai_upstream, anthropic_upstream):
        completion = asyncio.run(provider.complete(_request("use calculator 6*7", [CALCULATOR])))
        assert len(completion.tool_calls) == 1, provider.name
        call = completion.tool_calls[0]
        assert call.name == "calculator" and call.arguments == {"expression": "6*7"} and call.id


def test_tool_results_go_back_in_each_api_shape(
    openai_upstream: Upstream, anthropic_upstream: Upstream
) -> None:
    from apps.llm.providers.base import ToolCall

    call = ToolCall(id="call_1", name="calculator", arguments={"expression": "6*7"})
    messages = [
        ChatMessage("user", "use calculator 6*7"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", '{"result": 42}', tool_call_id="call_1", name="calculator"),
    ]
    for provider in _providers(openai_upstream, anthropic_upstream):
        request = CompletionRequest(model="m", messages=messages, tools=[CALCULATOR])
        completion = asyncio.run(provider.complete(request))
        assert completion.content == 'The tool said {"result": 42}', provider.name
    assert openai_upstream.requests[-1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"result": 42}',
    }
    assert anthropic_upstream.requests[-1]["messages"][-1]["content"][0]["type"] == "tool_result"


def test_upstream_errors_become_502_with_the_reason(
    openai_upstream: Upstream, anthropic_upstream: Upstream
) -> None:
    for provider, reason in zip(
        _providers(openai_upstream, anthropic_upstream),
        ["The model is overloaded", "Internal server error"],
        strict=True,
    ):
        with pytest.raises(ApplicationError) as caught:
            asyncio.run(provider.complete(_request("please fail500")))
        assert caught.value.status == 502 and caught.value.code == "upstream_error"
        assert reason in caught.value.message


def test_wrong_api_key_is_a_502_naming_the_upstream_refusal(openai_upstream: Upstream) -> None:
    provider = OpenAICompatibleProvider(base_url=openai_upstream.url, api_key="wrong", timeout=2)
    with pytest.raises(ApplicationError) as caught:
        asyncio.run(provider.complete(_request("hi")))
    assert caught.value.status == 502 and "Incorrect API key" in caught.value.message
    assert caught.value.extra["upstream_status"] == 401


def test_timeouts_become_504(openai_upstream: Upstream, anthropic_upstream: Upstream) -> None:
    for provider in _providers(openai_upstream, anthropic_upstream):
        with pytest.raises(ApplicationError) as caught:
            asyncio.run(provider.complete(_request("be slow")))
        assert caught.value.status == 504 and caught.value.code == "upstream_timeout", provider.name


def test_unreachable_upstream_is_a_502() -> None:
    from tests.conftest import free_port

    provider = OpenAICompatibleProvider(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="x", timeout=2)
    with pytest.raises(ApplicationError) as caught:
        asyncio.run(provider.complete(_request("hi")))
    assert caught.value.status == 502


def test_echo_streams_word_by_word_and_requests_tools() -> None:
    echo = EchoProvider()

    async def collect(request: CompletionRequest) -> list:
        return [event async for event in echo.stream(request)]

    words = [e.text for e in asyncio.run(collect(_request("one two three"))) if isinstance(e, TextDelta)]
    assert words == ["one ", "two ", "three"]
    completion = asyncio.run(echo.complete(_request('/tool calculator {"expression": "2+2"}')))
    assert completion.tool_calls[0].name == "calculator"
    assert completion.tool_calls[0].arguments == {"expression": "2+2"}


def test_odd_chunk_shapes_from_compatible_servers_are_skipped(openai_upstream: Upstream) -> None:
    provider = OpenAICompatibleProvider(
        base_url=openai_upstream.url, api_key=openai_upstream.api_key, timeout=2
    )

    async def collect() -> list:
        return [event async for event in provider.stream(_request("odd chunks please"))]

    events = asyncio.run(collect())
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "You said: odd chunks please (2 messages)"


def test_an_error_event_mid_stream_is_a_502_with_its_reason(openai_upstream: Upstream) -> None:
    provider = OpenAICompatibleProvider(
        base_url=openai_upstream.url, api_key=openai_upstream.api_key, timeout=2
    )
    seen: list[str] = []

    async def collect() -> None:
        async for event in provider.stream(_request("error mid-stream")):
            if isinstance(event, TextDelta):
                seen.append(event.text)

    with pytest.raises(ApplicationError) as caught:
        asyncio.run(collect())
    assert seen == ["Partial "]
    assert caught.value.status == 502 and "mid-stream" in caught.value.message
