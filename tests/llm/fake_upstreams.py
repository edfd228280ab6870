"""Small model servers on local ports that speak the real wire protocols: OpenAI's chat completions
(JSON and `data:` chunks ending in `[DONE]`, tool calls streamed as deltas) and Anthropic's Messages
API (named SSE events, `input_json_delta` for tool input). Each runs in a thread of its own.

Behaviour is picked by the last user message:
- "fail500" → 500 with the provider's error JSON; "slow" → waits 3 s before answering;
- "use calculator <expr>" (with tools offered) → one calculator tool call, then an answer with its result;
- "always tool" → requests the calculator on every round;
- agents (OpenAI wire): with `transfer_to_<id>` functions offered, "always transfer" calls the first
  one on every turn (whatever came before), and "transfer to <id>" calls `transfer_to_<id>` (once:
  not after a tool result that follows the last user message); a system message
  "call <tool> <json>" makes the model call that tool (if offered) once per turn;
- anything else → "You said: <text> (<n> messages)" streamed word by word.

`Upstream.delay_seconds` waits that long before each answer (a model's thinking time, for benches).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Upstream:
    url: str
    api_key: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay_seconds: float = 0.0
    loop: asyncio.AbstractEventLoop | None = None
    runner: web.AppRunner | None = None


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                texts = [
                    b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
                ]
                if texts:
                    return " ".join(texts)
                return ""
    return ""


def _tool_results(messages: list[dict[str, Any]]) -> list[str]:
    found = []
    for message in messages:
        if message.get("role") == "tool":
            found.append(message["content"])
        content = message.get("content")
        if isinstance(content, list):
            found.extend(
                str(b.get("content"))
                for b in content
                if isinstance(b, dict) and b.get("type") == "tool_result"
            )
    return found


_CALL = re.compile(r"call (\S+) (\{.*\})", re.DOTALL)


def _results_since_last_user(messages: list[dict[str, Any]]) -> list[str]:
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    return _tool_results(messages[last_user + 1 :])


def _agent_plan(messages: list[dict[str, Any]], tools: list[str]) -> tuple[str, Any] | None:
    """The agents' behaviours: a transfer call or a tool named by the system message."""
    text = _last_user_text(messages)
    transfers = [name for name in tools if name.startswith("transfer_to_")]
    if "always transfer" in text and transfers:
        return "tool", (transfers[0], {"reason": "always"})
    if _results_since_last_user(messages):
        return None
    wanted = re.search(r"transfer to ([a-z0-9_-]+)", text)
    if wanted and f"transfer_to_{wanted[1]}" in transfers:
        return "tool", (f"transfer_to_{wanted[1]}", {"reason": f"asked for {wanted[1]}"})
    system = " ".join(str(m.get("content")) for m in messages if m.get("role") == "system")
    called = _CALL.search(system)
    if called and called[1] in tools:
        return "tool", (called[1], json.loads(called[2]))
    return None


def _plan(messages: list[dict[str, Any]], offered: bool, tools: list[str] | None = None) -> tuple[str, Any]:
    text = _last_user_text(messages)
    results = _tool_results(messages)
    if offered and tools:
        planned = _agent_plan(messages, tools)
        if planned is not None:
            return planned
    if "always tool" in text and offered:
        return "tool", {"expression": "1+1"}
    if text.startswith("use calculator") and not results:
        return "tool", {"expression": text.removeprefix("use calculator").strip()}
    if results:
        return "text", f"The tool said {results[-1]}"
    return "text", f"You said: {text} ({len(messages)} messages)"


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


async def _openai(request: web.Request) -> web.StreamResponse:
    upstream: Upstream = request.app["upstream"]
    if request.headers.get("Authorization") != f"Bearer {upstream.api_key}":
        return web.json_response(
            {
                "error": {
                    "message": "Incorrect API key provided",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            status=401,
        )
    body = await request.json()
    upstream.requests.append(body)
    text = _last_user_text(body["messages"])
    if "fail500" in text:
        return web.json_response(
            {"error": {"message": "The model is overloaded", "type": "server_error"}}, status=500
        )
    if "slow" in text:
        await asyncio.sleep(3)
    if upstream.delay_seconds:
        await asyncio.sleep(upstream.delay_seconds)
    tools = [t["function"]["name"] for t in body.get("tools") or [] if t.get("type") == "function"]
    kind, value = _plan(body["messages"], bool(tools) and body.get("tool_choice") != "none", tools)
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)

    async def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
        payload = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        await response.write(f"data: {json.dumps(payload)}\n\n".encode())

    await chunk({"role": "assistant", "content": ""})
    if "odd chunks" in text:  # shapes some OpenAI-compatible servers send; nothing here is text
        for odd in ({"choices": None}, {"choices": [{"index": 0, "delta": None}]}, {"choices": ["x"]}):
            await response.write(f"data: {json.dumps({**base, **odd})}\n\n".encode())
        await chunk({"content": 5, "tool_calls": ["not a call"]})
    if "error mid-stream" in text:  # an error event after the stream began, as OpenAI sends them
        await chunk({"content": "Partial "})
        await response.write(b'data: {"error": {"message": "The server had an error mid-stream"}}\n\n')
        await response.write_eof()
        return response
    if kind == "tool":
        name, value = value if isinstance(value, tuple) else ("calculator", value)
        arguments = json.dumps(value)
        await chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": f"call_{len(upstream.requests)}",
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                ]
            }
        )
        for start in range(0, len(arguments), 5):
            await chunk(
                {"tool_calls": [{"index": 0, "function": {"arguments": arguments[start : start + 5]}}]}
            )
        await chunk({}, "tool_calls")
        output = 7
    else:
        for word in _words(value):
            await chunk({"content": word})
        await chunk({}, "stop")
        output = len(_words(value))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 11, "completion_tokens": output, "total_tokens": 11 + output}
        await response.write(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _anthropic(request: web.Request) -> web.StreamResponse:
    upstream: Upstream = request.app["upstream"]
    # Anthropic's API takes `x-api-key`; newer SDKs send `Authorization: Bearer` instead.
    sent = request.headers.get("x-api-key") or request.headers.get("Authorization", "").removeprefix(
        "Bearer "
    )
    if sent != upstream.api_key:
        return web.json_response(
            {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
            status=401,
        )
    body = await request.json()
    upstream.requests.append(body)
    text = _last_user_text(body["messages"])
    if "fail500" in text:
        return web.json_response(
            {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}, status=500
        )
    if "slow" in text:
        await asyncio.sleep(3)
    choice = body.get("tool_choice") or {}
    kind, value = _plan(body["messages"], bool(body.get("tools")) and choice.get("type") != "none")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)

    async def event(name: str, data: dict[str, Any]) -> None:
        await response.write(f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode())

    await event(
        "message_start",
        {
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 13, "output_tokens": 1},
            }
        },
    )
    await event("ping", {})
    if kind == "tool":
        await event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        await event(
            "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Let me calculate. "}}
        )
        await event("content_block_stop", {"index": 0})
        await event(
            "content_block_start",
            {
                "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_01", "name": "calculator", "input": {}},
            },
        )
        arguments = json.dumps(value)
        for start in range(0, len(arguments), 4):
            await event(
                "content_block_delta",
                {
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": arguments[start : start + 4]},
                },
            )
        await event("content_block_stop", {"index": 1})
        stop, output = "tool_use", 9
    else:
        await event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        for word in _words(value):
            await event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": word}})
        await event("content_block_stop", {"index": 0})
        stop, output = "end_turn", len(_words(value))
    await event(
        "message_delta",
        {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": output}},
    )
    await event("message_stop", {})
    await response.write_eof()
    return response


def start_upstream(kind: str, api_key: str) -> Upstream:
    port = free_port()
    prefix = "/v1" if kind == "openai" else ""
    upstream = Upstream(url=f"http://127.0.0.1:{port}{prefix}", api_key=api_key)
    ready = threading.Event()

    def serve() -> None:
        loop = asyncio.new_event_loop()
        upstream.loop = loop
        app = web.Application()
        app["upstream"] = upstream
        if kind == "openai":
            app.router.add_post("/v1/chat/completions", _openai)
        else:
            app.router.add_post("/v1/messages", _anthropic)
        runner = web.AppRunner(app)
        upstream.runner = runner
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True, name=f"fake-{kind}").start()
    ready.wait(10)
    return upstream


def stop_upstream(upstream: Upstream) -> None:
    if upstream.loop is not None and upstream.runner is not None:
        asyncio.run_coroutine_threadsafe(upstream.runner.cleanup(), upstream.loop).result(10)
        upstream.loop.call_soon_threadsafe(upstream.loop.stop)
