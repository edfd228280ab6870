"""The OpenAI door driven by the official `openai` Python client against the real server: plain and
streamed completions, a client-side tool call round trip, an agent, a 401, another team's agent,
and a refused parameter — each as the SDK sees it (its types and its exceptions)."""

from __future__ import annotations

import json

import openai
import pytest

from apps.agents.services import agent_create
from apps.billing.accounts import account_for
from apps.billing.metering import Kind, Usage, meter
from apps.billing.models import Plan
from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create
from tests.e2e.conftest import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _client(server: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=30)


def _team(slug: str, scopes: str = "*") -> tuple[Tenant, str]:
    tenant = Tenant.objects.create(slug=slug, name=slug.title())
    return tenant, api_key_create(tenant=tenant, scopes=scopes).plaintext


def test_plain_and_streamed_completions(slop_server: LiveServer) -> None:
    _, key = _team("oa-plain")
    client = _client(slop_server, key)
    reply = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "hello world"}]
    )
    assert reply.choices[0].message.content == "hello world" and reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens == 2
    chunks = list(
        client.chat.completions.create(
            model="echo",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "one two three"},
            ],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("chat_")
    models = [model.id for model in client.models.list()]
    assert "echo" in models


def test_a_client_side_tool_call_round_trip(slop_server: LiveServer) -> None:
    _, key = _team("oa-tools")
    client = _client(slop_server, key)
    messages: list[dict[str, object]] = [{"role": "user", "content": '/tool get_weather {"city": "Paris"}'}]
    first = client.chat.completions.create(model="echo", messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    messages.append(choice.message.model_dump())  # its nulls too, as a client sends it back
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"})
    second = client.chat.completions.create(model="echo", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "get_weather returned: sunny, 21 C"
    # Streamed, the call arrives as a tool_calls delta.
    streamed = list(
        client.chat.completions.create(model="echo", messages=messages[:1], tools=[WEATHER], stream=True)
    )
    deltas = [d for c in streamed for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas and deltas[0].function is not None and deltas[0].function.name == "get_weather"
    assert streamed[-1].choices[0].finish_reason == "tool_calls"


def test_an_agent_and_another_teams_agent(slop_server: LiveServer) -> None:
    alice, alice_key = _team("oa-alice")
    _, charlie_key = _team("oa-charlie")
    agent_create(tenant=alice, agent_id="support", fields={"description": "Product questions"})
    alice_client = _client(slop_server, alice_key)
    assert "agent:support" in [model.id for model in alice_client.models.list()]
    reply = alice_client.chat.completions.create(
        model="agent:support", messages=[{"role": "user", "content": "my order is late"}]
    )
    assert reply.model == "agent:support" and reply.choices[0].message.content == "my order is late"
    charlie = _client(slop_server, charlie_key)
    assert not [model.id for model in charlie.models.list() if "support" in model.id]
    with pytest.raises(openai.NotFoundError) as refused:
        charlie.chat.completions.create(model="agent:support", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.code == "model_not_found"
    # A key of Alice's own without agents.support.execute neither sees nor runs it.
    narrow = _client(slop_server, api_key_create(tenant=alice, scopes="chat.*").plaintext)
    assert "agent:support" not in [model.id for model in narrow.models.list()]
    with pytest.raises(openai.PermissionDeniedError) as denied:
        narrow.chat.completions.create(model="agent:support", messages=[{"role": "user", "content": "hi"}])
    assert denied.value.body["required_scope"] == "agents.support.execute"  # type: ignore[index]


def test_a_bad_key_and_a_refused_parameter(slop_server: LiveServer) -> None:
    with pytest.raises(openai.AuthenticationError) as unauthenticated:
        _client(slop_server, "slop_test_not_a_key").models.list()
    assert unauthenticated.value.code == "invalid_api_key"
    _, key = _team("oa-refused")
    with pytest.raises(openai.BadRequestError) as refused:
        _client(slop_server, key).chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "hi"}], top_p=0.5
        )
    assert refused.value.param == "top_p" and refused.value.code == "unsupported_parameter"


def test_a_quota_refusal_and_the_end_user_cap_through_user(slop_server: LiveServer) -> None:
    """Over a quota (PROTOCOL.md §12) the SDK gets OpenAI's 429 insufficient_quota (RateLimitError)
    with the SLOP fields kept; `user` is the end user, so the team's per-user cap holds for it."""
    tenant, key = _team("oa-quota")
    account = account_for(tenant)
    account.plan = Plan.objects.create(slug="test-oa-quota", name="Test", included_tokens=None)
    account.end_user_monthly_token_cap = 50
    account.save(update_fields=["plan", "end_user_monthly_token_cap", "updated_at"])
    meter(
        usage=Usage(tenant_id=int(tenant.pk), end_user="heavy"), kind=Kind.LLM, model="echo", input_tokens=50
    )
    client = _client(slop_server, key)
    hello = [{"role": "user", "content": "hello"}]
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="echo", messages=hello, user="heavy")  # type: ignore[arg-type]
    assert refused.value.status_code == 429 and refused.value.code == "insufficient_quota"
    body = refused.value.body
    assert body["type"] == "insufficient_quota" and body["scope"] == "user" and body["limit"] == 50  # type: ignore[index]
    light = client.chat.completions.create(model="echo", messages=hello, user="light")  # type: ignore[arg-type]
    assert light.choices[0].message.content == "hello"
    # The team's own plan used up: every request is refused, whoever it is for.
    _, small_key = _team("oa-quota-team")
    small = Tenant.objects.get(slug="oa-quota-team")
    small_account = account_for(small)
    small_account.plan = Plan.objects.create(slug="test-oa-quota-team", name="Test", included_tokens=10)
    small_account.save(update_fields=["plan", "updated_at"])
    meter(usage=Usage(tenant_id=int(small.pk)), kind=Kind.LLM, model="echo", input_tokens=10)
    with pytest.raises(openai.RateLimitError) as team_refused:
        _client(slop_server, small_key).chat.completions.create(model="echo", messages=hello)  # type: ignore[arg-type]
    assert team_refused.value.body["scope"] == "tenant"  # type: ignore[index]
