"""/v1 with the Django test client: OpenAI's shapes for models, completions (plain, streamed, with
client tools), agents, and errors in OpenAI's shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from apps.agents.services import agent_create
from apps.billing.models import UsageCounter
from apps.chat.models import Chat, Message
from apps.core.errors import ApplicationError
from apps.facades.openai.errors import openai_error_body
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db

HELLO = {"model": "echo", "messages": [{"role": "user", "content": "hello there"}]}


def _post(client: Any, body: Any, **extra: Any) -> Any:
    return client.post("/v1/chat/completions", body, format="json", **extra)


def _events(response: Any) -> list[Any]:
    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    text = async_to_sync(collect)().decode()
    lines = [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]", text
    return [json.loads(line) for line in lines[:-1]]


def test_a_completion_in_openais_shape_is_stored_as_a_chat(alice_client: Any, alice: Tenant) -> None:
    response = _post(alice_client, HELLO)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "echo"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hello there", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    usage = body["usage"]
    assert usage["completion_tokens"] == 2 and usage["total_tokens"] == usage["prompt_tokens"] + 2
    chat = Chat.objects.for_tenant(alice).get(chat_id=body["id"])
    roles = list(Message.objects.for_tenant(alice).filter(chat=chat).values_list("role", "content"))
    assert roles == [("user", "hello there"), ("assistant", "hello there")]


@pytest.mark.django_db(transaction=True)  # the stream stores its chat from a worker thread
def test_a_streamed_completion_is_chunks_then_done(alice_client: Any) -> None:
    body = {**HELLO, "stream": True, "stream_options": {"include_usage": True}}
    response = _post(alice_client, body)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/event-stream")
    events = _events(response)
    assert {event["object"] for event in events} == {"chat.completion.chunk"}
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == "hello there"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 2


def test_client_tools_come_back_as_tool_calls_and_their_results_are_answered(alice_client: Any) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    ask = {"role": "user", "content": '/tool get_weather {"city": "Paris"}'}
    first = _post(alice_client, {"model": "echo", "messages": [ask], "tools": tools}).json()
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    answer = {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}
    messages = [ask, {"role": "assistant", "content": None, "tool_calls": [call]}, answer]
    second = _post(alice_client, {"model": "echo", "messages": messages, "tools": tools}).json()
    assert second["choices"][0]["message"]["content"] == "get_weather returned: sunny"


def test_a_model_call_to_a_server_tool_is_handed_to_the_client_never_run(alice_client: Any) -> None:
    ask = {"role": "user", "content": '/tool calculator {"expression": "6*7"}'}
    body = _post(alice_client, {"model": "echo", "messages": [ask]}).json()
    choice = body["choices"][0]
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "calculator" and choice["finish_reason"] == "tool_calls"
    # Nothing ran: no answer (an echo of a result would read "calculator returned: 42").
    assert choice["message"]["content"] is None and "returned" not in json.dumps(body)


def test_an_agent_answers_as_a_model(alice_client: Any, alice: Tenant) -> None:
    agent_create(tenant=alice, agent_id="support", fields={"description": "Product questions"})
    body = {"model": "agent:support", "messages": [{"role": "user", "content": "hi agent"}]}
    reply = _post(alice_client, body).json()
    assert reply["model"] == "agent:support" and reply["choices"][0]["message"]["content"] == "hi agent"
    stored = Message.objects.for_tenant(alice).get(chat__chat_id=reply["id"], role="assistant")
    assert stored.agent == "support"


def test_models_lists_the_teams_models_and_the_agents_the_key_may_execute(
    alice: Tenant, client_for: Any
) -> None:
    for agent_id in ("support", "billing"):
        agent_create(tenant=alice, agent_id=agent_id, fields={"description": agent_id})
    everything = client_for(alice).get("/v1/models").json()
    assert everything["object"] == "list"
    ids = [model["id"] for model in everything["data"]]
    assert "echo" in ids and {"agent:support", "agent:billing"} <= set(ids)
    narrow = client_for(alice, "chat.*,agents.support.execute").get("/v1/models").json()
    assert [m["id"] for m in narrow["data"] if m["id"].startswith("agent:")] == ["agent:support"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**HELLO, "top_p": 0.5}, "top_p"),
        ({**HELLO, "user": ""}, "user"),
        ({**HELLO, "n": 2}, "n"),
        ({**HELLO, "tool_choice": "required"}, "tool_choice"),
        (
            {**HELLO, "messages": [{"role": "user", "content": "x", "audio": {"id": "a"}}]},
            "messages[0].audio",
        ),
        (
            {**HELLO, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0]",
        ),
        ({**HELLO, "stream_options": {"include_usage": True}}, "stream_options"),
        ({**HELLO, "temperature": 5}, "temperature"),
    ],
)
def test_a_parameter_not_acted_on_is_refused_in_openais_shape(
    alice_client: Any, body: Any, param: str
) -> None:
    response = _post(alice_client, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]


def test_nulls_are_left_out_not_refused(alice_client: Any) -> None:
    assert _post(alice_client, {**HELLO, "top_p": None, "user": None}).status_code == 200


def test_user_is_the_end_user_of_the_request(alice_client: Any, alice: Tenant) -> None:
    assert _post(alice_client, {**HELLO, "user": "customer-7"}).status_code == 200
    counter = UsageCounter.objects.for_tenant(alice).filter(scope="user", subject="customer-7").first()
    assert counter is not None and counter.tokens > 0
    # The same end user in the header and the field is fine; two different ones are refused.
    same = _post(alice_client, {**HELLO, "user": "customer-7"}, HTTP_X_SLOP_USER="customer-7")
    assert same.status_code == 200
    other = _post(alice_client, {**HELLO, "user": "customer-7"}, HTTP_X_SLOP_USER="customer-8")
    assert other.status_code == 400 and other.json()["error"]["param"] == "user"
    too_long = _post(alice_client, {**HELLO, "user": "x" * 201})
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "user"


def test_errors_are_in_openais_shape(alice_client: Any, client: Any, alice: Tenant, client_for: Any) -> None:
    missing = client.post("/v1/chat/completions", HELLO, content_type="application/json")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    wrong = client.get("/v1/models", HTTP_AUTHORIZATION="Bearer slop_test_nope")
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "invalid_request_error"
    unknown = _post(alice_client, {**HELLO, "model": "gpt-17"}).json()["error"]
    assert unknown["code"] == "model_not_found" and unknown["param"] == "model"
    assert _post(alice_client, {**HELLO, "model": "agent:nobody"}).status_code == 404
    no_chat = _post(client_for(alice, "agents.*"), HELLO)
    assert no_chat.status_code == 403 and no_chat.json()["error"]["required_scope"] == "chat.write"
    malformed = alice_client.post("/v1/chat/completions", "{", content_type="application/json")
    assert malformed.status_code == 400 and malformed.json()["error"]["message"].startswith("Malformed")
    assert alice_client.post("/v1/models").status_code == 405


def test_another_teams_agents_are_neither_listed_nor_run(alice: Tenant, charlie_client: Any) -> None:
    agent_create(tenant=alice, agent_id="secret-agent", fields={"description": "Alice's"})
    assert "secret-agent" not in json.dumps(charlie_client.get("/v1/models").json())
    body = {"model": "agent:secret-agent", "messages": [{"role": "user", "content": "hi"}]}
    refused = _post(charlie_client, body)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "model_not_found"


def test_info_lists_the_door(client: Any) -> None:
    body = client.get("/info").json()
    assert "openai" in body["capabilities"]["doors"]
    assert body["capabilities"]["openai"]["base_url"] == "/v1"
    paths = {endpoint["path"]: endpoint["methods"] for endpoint in body["endpoints"]}
    assert paths["/v1/models"] == ["GET"] and paths["/v1/chat/completions"] == ["POST"]


@pytest.mark.parametrize(
    ("error", "status", "kind", "code"),
    [
        # What the billing service raises for a request over a quota (PROTOCOL.md §12): OpenAI's 429.
        (
            ApplicationError("Monthly tokens used up", code="quota_exceeded", status=402),
            429,
            "insufficient_quota",
            "insufficient_quota",
        ),
        (
            ApplicationError("Too many requests", code="rate_limited", status=429),
            429,
            "requests",
            "rate_limit_exceeded",
        ),
        (
            ApplicationError("The model provider failed", code="upstream_error", status=502),
            502,
            "server_error",
            "upstream_error",
        ),
    ],
)
def test_platform_errors_map_to_openais(error: ApplicationError, status: int, kind: str, code: str) -> None:
    answered, body = openai_error_body(error)
    assert answered == status and body["error"]["type"] == kind and body["error"]["code"] == code
    assert body["error"]["message"] == error.message


def test_an_agent_runs_its_tools_on_the_server(alice_client: Any, alice: Tenant) -> None:
    agent_create(tenant=alice, agent_id="maths", fields={"description": "Sums", "tools": ["calculator"]})
    ask = {"role": "user", "content": '/tool calculator {"expression": "6*7"}'}
    reply = _post(alice_client, {"model": "agent:maths", "messages": [ask]}).json()
    message = reply["choices"][0]["message"]
    assert "tool_calls" not in message and "42" in message["content"], reply
    assert reply["choices"][0]["finish_reason"] == "stop"


def test_any_other_path_under_v1_is_openais_404(alice_client: Any, client: Any) -> None:
    response = alice_client.post("/v1/completions", {"model": "echo", "prompt": "hi"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": "Invalid URL (POST /v1/completions)",
        "type": "invalid_request_error",
        "param": None,
        "code": "unknown_url",
    }
    assert client.get("/v1/embeddings").status_code == 401  # the key is checked first
