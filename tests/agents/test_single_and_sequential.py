"""One agent and the sequential pattern over POST /chat (echo): what runs, what is streamed back in
the reply, what is stored."""

from __future__ import annotations

from typing import Any

import pytest

from apps.billing.models import UsageEvent
from apps.chat.models import Message, Thread

pytestmark = pytest.mark.django_db


def say(client: Any, content: str, **extra: Any) -> Any:
    return client.post("/chat", {"messages": [{"content": content}], **extra}, format="json")


def test_one_agent_answers_with_its_turn_recorded(alice_client: Any, alice: Any, make_agent: Any) -> None:
    make_agent(alice, "support", description="Helps customers", instructions="Be kind.")
    response = say(alice_client, "Hello there", agent="support")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["message"]["content"] == "Hello there"
    assert body["message"]["agent"] == "support"
    assert [(a["agent"], a["step"], a["content"]) for a in body["agents"]] == [("support", 1, "Hello there")]
    assert body["agents"][0]["usage"]["output_tokens"] == 2
    stored = Message.objects.for_tenant(alice).get(role="assistant")
    assert (stored.agent, stored.step, stored.content) == ("support", 1, "Hello there")


def test_sequential_each_step_sees_the_previous_output(
    alice_client: Any, alice: Any, make_agent: Any
) -> None:
    for slug in ("researcher", "writer", "editor"):
        make_agent(alice, slug)
    calc = '/tool calculator {"expression": "6*7"}'
    body = say(alice_client, calc, pattern="sequential", agents=["researcher", "writer", "editor"]).json()
    steps = body["agents"]
    assert [(s["agent"], s["step"]) for s in steps] == [("researcher", 1), ("writer", 2), ("editor", 3)]
    # The researcher ran the tool; the writer got its output as input, and so on down the line.
    assert steps[0]["tool_calls"][0]["result"] == 42
    assert steps[0]["content"] == 'calculator returned: {"result": 42}'
    assert steps[1]["content"] == steps[0]["content"] == steps[2]["content"]
    assert body["message"] == {**body["message"], "agent": "editor", "content": steps[2]["content"]}
    assert body["tool_calls"][0]["agent"] == "researcher"
    rows = list(Message.objects.for_tenant(alice).filter(role="assistant").order_by("pk"))
    assert [(m.agent, m.step, m.status) for m in rows] == [
        ("researcher", 1, "complete"),
        ("writer", 2, "complete"),
        ("editor", 3, "complete"),
    ]
    metered = UsageEvent.objects.for_tenant(alice).filter(model="echo")
    assert {event.agent for event in metered} == {"researcher", "writer", "editor"}
    assert sum(e.output_tokens for e in metered) == sum(s["usage"]["output_tokens"] for s in steps)


def test_the_agent_holds_the_thread_until_released(alice_client: Any, alice: Any, make_agent: Any) -> None:
    make_agent(alice, "support")
    say(alice_client, "first", agent="support", thread_id="thread_held")
    assert Thread.objects.for_tenant(alice).get(thread_id="thread_held").agent == "support"
    follow_up = say(alice_client, "second", thread_id="thread_held").json()
    assert follow_up["message"]["agent"] == "support"
    detail = alice_client.get("/chat/thread_held").json()
    assert detail["agent"] == "support"
    assert [m.get("agent") for m in detail["messages"]] == [None, "support", None, "support"]
    released = say(alice_client, "third", thread_id="thread_held", agent=None).json()
    assert "agent" not in released["message"] and "agents" not in released
    assert Thread.objects.for_tenant(alice).get(thread_id="thread_held").agent == ""


def test_unknown_agent_and_another_tenants_agent_are_400(
    alice_client: Any, charlie_client: Any, alice: Any, make_agent: Any
) -> None:
    make_agent(alice, "support")
    for client in (alice_client, charlie_client):
        response = say(client, "hi", agent="ghost" if client is alice_client else "support")
        assert response.status_code == 400
        assert response.json()["code"] == "unknown_agent"
    assert not Message.objects.for_tenant(alice).exists()


def test_running_an_agent_needs_agents_execute(client_for: Any, alice: Any, make_agent: Any) -> None:
    make_agent(alice, "support")
    make_agent(alice, "sales")
    client = client_for(alice, "chat.*,tools.*,agents.sales.execute")
    refused = say(client, "hi", agent="support")
    assert refused.status_code == 403
    assert refused.json()["required_scope"] == "agents.support.execute"
    assert say(client, "hi", agent="sales").status_code == 200
