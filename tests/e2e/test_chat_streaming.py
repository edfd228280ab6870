"""Chat over the wire against real Daphne servers: HTTP, SSE (resume, disconnect), NDJSON, WebSocket.

Two servers share a real Redis (so a stream broken on one resumes on the other) and a local
OpenAI-compatible model server; the shared `slop_server` (no Redis) covers in-process resume.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from apps.chat.models import Message
from apps.llm.services import model_config_create
from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create
from tests.e2e.chat_helpers import auth, read_stream, sse_items
from tests.e2e.conftest import LiveServer, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LONG = " ".join(f"w{n}" for n in range(40))
# Outlasts the resume grace (4 s) thrice over, even on a loaded machine.
VERY_LONG = " ".join(f"w{n}" for n in range(150))


@pytest.fixture(scope="module")
def chat_servers(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: Any, redis_url: str, openai_upstream: Any
) -> Iterator[tuple[LiveServer, LiveServer]]:
    env = {
        "REDIS_URL": redis_url,
        # Long enough for a resume from the other server on a loaded machine: a web worker's first
        # stream can take a second or more to answer, and 1.5 s was sometimes missed.
        "SLOP_CHAT_RESUME_GRACE_SECONDS": "4",
        "SLOP_SSE_KEEPALIVE_SECONDS": "0.5",
        "OPENAI_API_KEY": openai_upstream.api_key,
        "SLOP_OPENAI_BASE_URL": openai_upstream.url,
        "SLOP_OPENAI_MODELS": "fake-gpt",
        "SLOP_DEFAULT_MODEL": "echo",
    }
    with django_db_blocker.unblock():
        first = start_server(env, tmp_path_factory.mktemp("chat-a"))
        second = start_server(env, tmp_path_factory.mktemp("chat-b"))
    yield first, second
    stop_server(first)
    stop_server(second)


@pytest.fixture
def tenants() -> dict[str, Any]:
    alice = Tenant.objects.create(slug="alice", name="Alice")
    charlie = Tenant.objects.create(slug="charlie", name="Charlie")
    model_config_create(tenant=alice, name="slow-echo", provider="echo", options={"delay_ms": 80})
    model_config_create(tenant=alice, name="idle-echo", provider="echo", options={"delay_ms": 1200})
    return {
        "alice": alice,
        "alice_key": api_key_create(tenant=alice, scopes="*").plaintext,
        "charlie_key": api_key_create(tenant=charlie, scopes="*").plaintext,
    }


def post(server: LiveServer, path: str, key: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, headers={**auth(key), **headers}, timeout=20)


def test_seed_chat_examples_over_http(chat_servers: Any, tenants: dict[str, Any]) -> None:
    server, _ = chat_servers
    key = tenants["alice_key"]
    single = post(server, "/chat", key, {"messages": [{"role": "user", "content": "Hello SLOP!"}]}).json()
    assert single["message"] == {**single["message"], "role": "assistant", "content": "Hello SLOP!"}
    for text in ("Let's discuss project planning", "What's our next milestone?"):
        reply = post(
            server,
            "/chat",
            key,
            {
                "thread_id": "thread_12345",
                "messages": [{"role": "user", "content": text}],
                "model": "fake-gpt",
            },
        ).json()
        assert reply["thread_id"] == "thread_12345" and reply["message"]["content"].startswith("You said: ")
    threads = httpx.get(f"{server.url}/chat?type=threads", headers=auth(key), timeout=10).json()["threads"]
    assert threads[0]["id"] == "thread_12345" and threads[0]["last_message"] == "What's our next milestone?"
    thread = httpx.get(f"{server.url}/chat/thread_12345", headers=auth(key), timeout=10).json()
    assert len(thread["messages"]) == 4
    chat = httpx.get(f"{server.url}/chat/{single['id']}", headers=auth(key), timeout=10).json()
    assert [m["content"] for m in chat["messages"]] == ["Hello SLOP!", "Hello SLOP!"]
    assert (
        httpx.get(
            f"{server.url}/chat/{single['id']}", headers=auth(tenants["charlie_key"]), timeout=10
        ).status_code
        == 404
    )


def _stream_post(
    server: LiveServer, key: str, body: dict[str, Any], path: str = "/chat/stream", **headers: str
):
    return httpx.stream(
        "POST", f"{server.url}{path}", json=body, headers={**auth(key), **headers}, timeout=20
    )


def test_sse_stream_has_ids_content_done_and_DONE(chat_servers: Any, tenants: dict[str, Any]) -> None:
    server, _ = chat_servers
    with _stream_post(
        server, tenants["alice_key"], {"messages": [{"content": "one two three four"}]}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        items, done = read_stream(response)
    assert done
    run = response.headers["x-slop-run"]
    assert [item.id for item in items] == [f"{run}:{n}" for n in range(1, len(items) + 1)]
    events = [item.event for item in items]
    assert [e["type"] for e in events] == ["content"] * 4 + ["done"]
    assert "".join(e["content"] for e in events) == "one two three four"
    done_event = events[-1]
    assert done_event["id"] == run and done_event["message"]["content"] == "one two three four"
    assert done_event["message"]["status"] == "complete" and done_event["usage"]["output_tokens"] == 4


def test_post_chat_with_stream_true_and_get_for_eventsource(
    chat_servers: Any, tenants: dict[str, Any]
) -> None:
    server, _ = chat_servers
    key = tenants["alice_key"]
    with _stream_post(
        server, key, {"messages": [{"content": "via chat"}], "stream": True}, path="/chat"
    ) as response:
        events = [i.event for i in read_stream(response)[0]]
    assert events[-1]["type"] == "done" and events[-1]["message"]["content"] == "via chat"
    with httpx.stream(
        "GET",
        f"{server.url}/chat/stream",
        params={"content": "from the browser", "thread_id": "thread_es"},
        headers={**auth(key), "Accept": "text/event-stream"},
        timeout=20,
    ) as response:
        items, done = read_stream(response)
    assert done and items[-1].event["thread_id"] == "thread_es"
    # the seed's EventSource client appends data.content of every event: never undefined
    assert all(isinstance(i.event.get("content"), str) for i in items)


def test_ndjson_stream(chat_servers: Any, tenants: dict[str, Any]) -> None:
    server, _ = chat_servers
    with _stream_post(
        server, tenants["alice_key"], {"messages": [{"content": "a b"}]}, Accept="application/x-ndjson"
    ) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert [line["type"] for line in lines] == ["content", "content", "done"]


def test_streamed_tool_call_in_order_and_refused_outside_scope(
    chat_servers: Any, tenants: dict[str, Any]
) -> None:
    server, _ = chat_servers
    body = {"messages": [{"content": '/tool calculator {"expression": "2+2"}'}]}
    with _stream_post(
        server, tenants["alice_key"], body, **{"X-SLOP-Scope": "chat.write,tools.calculator.execute"}
    ) as r:
        events = [i.event for i in read_stream(r)[0]]
    kinds = [e["type"] for e in events]
    assert kinds.index("tool_start") < kinds.index("tool_result") < kinds.index("done")
    start = events[kinds.index("tool_start")]
    result = events[kinds.index("tool_result")]
    assert start["tool"] == "calculator" and start["arguments"] == {"expression": "2+2"}
    assert result["call_id"] == start["call_id"] and result["result"] == 4
    with _stream_post(server, tenants["alice_key"], body, **{"X-SLOP-Scope": "chat.write"}) as r:
        events = [i.event for i in read_stream(r)[0]]
    refused = next(e for e in events if e["type"] == "tool_result")
    assert refused["code"] == "scope_violation" and "result" not in refused
    assert refused["required_scope"] == "tools.calculator.execute"


def test_openai_compatible_model_streams_tool_deltas_and_errors(
    chat_servers: Any, tenants: dict[str, Any]
) -> None:
    server, _ = chat_servers
    key = tenants["alice_key"]
    with _stream_post(
        server, key, {"messages": [{"content": "use calculator 6*7"}], "model": "fake-gpt"}
    ) as r:
        events = [i.event for i in read_stream(r)[0]]
    assert [e["type"] for e in events][:2] == ["tool_start", "tool_result"]
    assert events[1]["result"] == 42
    assert "".join(e["content"] for e in events if e["type"] == "content") == 'The tool said {"result": 42}'
    with _stream_post(server, key, {"messages": [{"content": "fail500"}], "model": "fake-gpt"}) as r:
        items, done = read_stream(r)
    assert done and items[-1].event["type"] == "error"
    assert items[-1].event["code"] == "upstream_error" and items[-1].event["status"] == 502
    assert "overloaded" in items[-1].event["error"]
    unknown = post(server, "/chat/stream", key, {"messages": [{"content": "x"}], "model": "nope"})
    assert unknown.status_code == 400 and "fake-gpt" in unknown.json()["models"]


def test_keep_alive_comments_on_idle_streams(chat_servers: Any, tenants: dict[str, Any]) -> None:
    server, _ = chat_servers
    comments = 0
    with _stream_post(
        server, tenants["alice_key"], {"messages": [{"content": "slow words"}], "model": "idle-echo"}
    ) as r:
        for item in sse_items(r):
            if item.comment is not None:
                comments += 1
            if item.data == "[DONE]":
                break
    assert comments >= 2


def _wait_for_reply(tenant: Tenant, chat_id: str, timeout: float = 20) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = Message.objects.for_tenant(tenant).filter(chat__chat_id=chat_id, role="assistant").first()
        if reply is not None:
            return reply
        time.sleep(0.1)
    raise AssertionError(f"no reply stored for {chat_id}")


def test_disconnect_stops_generation_and_stores_incomplete(
    chat_servers: Any, tenants: dict[str, Any]
) -> None:
    server, _ = chat_servers
    body = {"messages": [{"content": VERY_LONG}], "model": "slow-echo"}
    with _stream_post(server, tenants["alice_key"], body) as r:
        run = r.headers["x-slop-run"]
        got = []
        for item in sse_items(r):
            if item.data:
                got.append(item.event["content"])
            if len(got) == 3:
                break
    reply = _wait_for_reply(tenants["alice"], run)
    assert reply.status == "incomplete"
    assert reply.content.startswith("".join(got)) and len(reply.content) < len(VERY_LONG)


def _resume(server_from: LiveServer, server_to: LiveServer, key: str, charlie_key: str) -> tuple[str, str]:
    with _stream_post(server_from, key, {"messages": [{"content": LONG}], "model": "slow-echo"}) as r:
        run = r.headers["x-slop-run"]
        first, last_id = [], None
        for item in sse_items(r):
            if item.data:
                first.append(item.event["content"])
                last_id = item.id
            if len(first) == 4:
                break
    assert last_id == f"{run}:4"
    refused = post(server_to, "/chat/stream", charlie_key, {}, **{"Last-Event-ID": last_id})
    assert refused.status_code == 404
    with httpx.stream(
        "GET", f"{server_to.url}/chat/stream", headers={**auth(key), "Last-Event-ID": last_id}, timeout=20
    ) as r:
        items, done = read_stream(r)
    assert done
    assert items[0].id == f"{run}:5"
    events = [i.event for i in items]
    rest = "".join(e["content"] for e in events if e["type"] == "content")
    assert events[-1]["type"] == "done" and events[-1]["message"]["status"] == "complete"
    return "".join(first) + rest, run


def test_last_event_id_resumes_on_another_process(chat_servers: Any, tenants: dict[str, Any]) -> None:
    first, second = chat_servers
    text, run = _resume(first, second, tenants["alice_key"], tenants["charlie_key"])
    assert text == LONG
    assert _wait_for_reply(tenants["alice"], run).status == "complete"


def test_last_event_id_resumes_in_process_without_redis(
    slop_server: LiveServer, tenants: dict[str, Any]
) -> None:
    text, _ = _resume(slop_server, slop_server, tenants["alice_key"], tenants["charlie_key"])
    assert text == LONG


async def _ws_exchange(ws: Any) -> list[dict[str, Any]]:
    events = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 20))
        events.append(message)
        if message.get("status") == "complete":
            return events


def test_websocket_many_exchanges_cancel_and_isolation(chat_servers: Any, tenants: dict[str, Any]) -> None:
    server, _ = chat_servers

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with websockets.connect(
            f"{server.ws_url}/chat/ws", additional_headers=auth(tenants["alice_key"])
        ) as ws:
            for text in ("Tell me about SLOP protocol", "and again"):
                await ws.send(
                    json.dumps({"messages": [{"role": "user", "content": text}], "thread_id": "thread_ws"})
                )
                events = await _ws_exchange(ws)
                assert events[-1] == {"status": "complete"} and events[-2]["type"] == "done"
                assert "".join(e.get("content", "") for e in events[:-1]) == text
            await ws.send(json.dumps({"messages": [{"content": VERY_LONG}], "model": "slow-echo"}))
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert first["type"] == "content"
            await ws.send(json.dumps({"type": "cancel"}))
            events = await _ws_exchange(ws)
            out["cancelled"] = events[-2]
            await ws.send("not json")
            out["bad"] = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send(json.dumps({"messages": []}))
            out["invalid"] = await _ws_exchange(ws)
        async with websockets.connect(
            f"{server.ws_url}/chat/ws", additional_headers=auth(tenants["charlie_key"])
        ) as ws:
            await ws.send(
                json.dumps({"messages": [{"content": "hi"}], "thread_id": "thread_ws", "model": "fake-gpt"})
            )
            out["charlie"] = await _ws_exchange(ws)
        async with websockets.connect(f"{server.ws_url}/chat/ws") as ws:
            out["anonymous"] = json.loads(await asyncio.wait_for(ws.recv(), 10))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            out["anonymous_close"] = closed.value.rcvd.code if closed.value.rcvd else None
        return out

    out = asyncio.run(scenario())
    cancelled = out["cancelled"]
    assert cancelled["type"] == "done" and cancelled["message"]["status"] == "incomplete"
    assert len(cancelled["message"]["content"]) < len(VERY_LONG)
    assert out["bad"]["type"] == "error" and out["bad"]["code"] == "invalid_request"
    assert out["invalid"][0]["code"] == "validation_error"
    # charlie's thread_ws is his own: the model saw one message, none of Alice's
    assert out["charlie"][-2]["message"]["content"] == "You said: hi (1 messages)"
    assert out["anonymous"]["code"] == "unauthenticated" and out["anonymous_close"] == 4401
    stored = Message.objects.for_tenant(tenants["alice"]).filter(thread__thread_id="thread_ws").count()
    assert stored == 4


def test_browser_tickets_for_eventsource_and_websocket(chat_servers: Any, tenants: dict[str, Any]) -> None:
    server, other = chat_servers
    made = post(server, "/chat/tickets", tenants["alice_key"], {}, **{"X-SLOP-Scope": "chat.write,chat.read"})
    assert made.status_code == 201 and made.json()["expires_in"] == 60
    ticket = made.json()["ticket"]
    # EventSource: no headers at all, only the ticket (valid on the other process too, via Redis)
    with httpx.stream(
        "GET", f"{other.url}/chat/stream", params={"content": "from a browser", "ticket": ticket}, timeout=20
    ) as response:
        items, done = read_stream(response)
    assert done and items[-1].event["message"]["content"] == "from a browser"
    # the ticket carries the narrowed scope: no tools for this one
    with httpx.stream(
        "GET",
        f"{server.url}/chat/stream",
        timeout=20,
        params={"content": '/tool calculator {"expression": "1+1"}', "ticket": ticket},
    ) as response:
        events = [i.event for i in read_stream(response)[0]]
    assert next(e for e in events if e["type"] == "tool_result")["code"] == "scope_violation"
    bad = httpx.get(f"{server.url}/chat/stream", params={"content": "x", "ticket": "tkt_nope"}, timeout=10)
    assert bad.status_code == 401

    async def over_websocket() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with websockets.connect(f"{server.ws_url}/chat/ws?ticket={ticket}") as ws:
            await ws.send(json.dumps({"messages": [{"content": "hello ws"}]}))
            events = await _ws_exchange(ws)
        async with websockets.connect(f"{server.ws_url}/chat/ws?ticket=tkt_expired") as ws:
            refused = json.loads(await asyncio.wait_for(ws.recv(), 10))
        return events, refused

    events, refused = asyncio.run(over_websocket())
    assert events[-2]["message"]["content"] == "hello ws"
    assert refused["code"] == "unauthenticated"
