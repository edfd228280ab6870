"""Route, parallel, branching and handoffs over POST /chat with echo; limits and refused requests."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from apps.chat.models import Message, Thread
from tests.agents.routing_cases import MESSAGES, SPECIALISTS

pytestmark = pytest.mark.django_db


def say(client: Any, content: str, **extra: Any) -> Any:
    return client.post("/chat", {"messages": [{"content": content}], **extra}, format="json")


@pytest.fixture
def specialists(alice: Any, make_agent: Any) -> list[str]:
    for slug, (name, description) in SPECIALISTS.items():
        make_agent(alice, slug, name=name, description=description)
    return list(SPECIALISTS)


def test_route_picks_the_specialist_by_description_for_90_percent(
    alice_client: Any, specialists: list[str]
) -> None:
    right = 0
    for content, expected in MESSAGES:
        body = say(alice_client, content, pattern="route", agents=specialists).json()
        chosen = body["agents"][0]["agent"]
        assert body["message"]["agent"] == chosen and body["message"]["content"] == content
        right += chosen == expected
    assert len(MESSAGES) >= 20
    assert right / len(MESSAGES) >= 0.9, f"{right}/{len(MESSAGES)}"


def test_route_says_who_was_chosen_and_why(alice_client: Any, specialists: list[str]) -> None:
    body = say(alice_client, "Where is my parcel?", pattern="route", agents=specialists).json()
    (turn,) = body["agents"]
    assert turn["agent"] == "shipping" and turn["step"] == 1
    assert "description nearest the message" in turn["reason"]
    assert 0 < turn["score"] <= 1


def test_a_router_agent_routes_among_its_handoffs(
    alice: Any, alice_client: Any, make_agent: Any, specialists: Any
) -> None:
    make_agent(alice, "front", handoffs=["billing", "tech"])
    body = say(alice_client, "I was charged twice", pattern="route", agent="front").json()
    assert [a["agent"] for a in body["agents"]] == ["billing"]


def test_parallel_runs_every_agent_and_merges_without_an_aggregator(
    alice_client: Any, alice: Any, specialists: list[str]
) -> None:
    body = say(alice_client, "hello all", pattern="parallel", agents=["billing", "tech", "sales"]).json()
    assert sorted((a["agent"], a["step"]) for a in body["agents"]) == [
        ("billing", 1),
        ("sales", 3),
        ("tech", 2),
    ]
    assert body["message"]["content"] == "[billing]\nhello all\n\n[tech]\nhello all\n\n[sales]\nhello all"
    assert "agent" not in body["message"]
    rows = list(Message.objects.for_tenant(alice).filter(role="assistant").order_by("pk"))
    assert sorted(m.agent for m in rows) == ["", "billing", "sales", "tech"]
    assert rows[-1].content == body["message"]["content"] and rows[-1].output_tokens == 0


def test_parallel_with_an_aggregator(alice_client: Any, specialists: list[str]) -> None:
    body = say(alice_client, "hi", pattern="parallel", agents=["billing", "tech"], aggregator="sales").json()
    assert [a["agent"] for a in body["agents"]][-1] == "sales"
    assert body["agents"][-1]["step"] == 3
    assert body["message"]["agent"] == "sales"
    assert body["message"]["content"] == "[billing]\nhi\n\n[tech]\nhi"  # echo repeats what it merged


def test_parallel_agents_run_concurrently(alice: Any, alice_client: Any, make_agent: Any) -> None:
    from apps.llm.services import model_config_create

    model_config_create(tenant=alice, name="slow-echo", provider="echo", options={"delay_ms": 300})
    for slug in ("a", "b", "c", "d"):
        make_agent(alice, slug, model="slow-echo")
    import time

    say(alice_client, "warm up", model="echo")  # the process's first chat imports and caches a lot
    started = time.monotonic()
    body = say(alice_client, "one two three", pattern="parallel", agents=["a", "b", "c", "d"]).json()
    elapsed = time.monotonic() - started
    assert len(body["agents"]) == 4
    # One agent takes 3 x 300 ms; the four in sequence would take 3.6 s.
    assert elapsed < 2.4, elapsed


@pytest.mark.parametrize(
    ("content", "branches", "expected", "reason"),
    [
        (
            "refund please",
            [{"when": {"contains": "REFUND"}, "agent": "billing"}, {"agent": "tech"}],
            "billing",
            "contains 'REFUND'",
        ),
        (
            "error 500 here",
            [{"when": {"regex": r"error \d+"}, "agent": "tech"}, {"agent": "sales"}],
            "tech",
            "regex",
        ),
        (
            "Shipping",
            [{"when": {"label": "shipping"}, "agent": "shipping"}, {"agent": "sales"}],
            "shipping",
            "label 'shipping'",
        ),
        (
            "nothing matches",
            [{"agent": "sales"}, {"when": {"contains": "refund"}, "agent": "billing"}],
            "sales",
            "default branch",
        ),
    ],
)
def test_branching_follows_the_first_condition_that_holds(
    alice: Any,
    alice_client: Any,
    make_agent: Any,
    specialists: Any,
    content: str,
    branches: Any,
    expected: str,
    reason: str,
) -> None:
    make_agent(alice, "triage")
    body = say(alice_client, content, pattern="branching", agent="triage", branches=branches).json()
    assert [a["agent"] for a in body["agents"]] == ["triage", expected]
    assert body["message"]["agent"] == expected


def test_branching_without_a_match_or_default_keeps_the_first_answer(
    alice: Any, alice_client: Any, make_agent: Any, specialists: Any
) -> None:
    make_agent(alice, "triage")
    branches = [{"when": {"contains": "refund"}, "agent": "billing"}]
    body = say(alice_client, "hello", pattern="branching", agent="triage", branches=branches).json()
    assert [a["agent"] for a in body["agents"]] == ["triage"]
    assert body["message"] == {**body["message"], "agent": "triage", "content": "hello"}


def test_a_handoff_transfers_the_turn_and_the_thread(alice: Any, alice_client: Any, make_agent: Any) -> None:
    make_agent(alice, "front", handoffs=["tech"], description="Greets")
    make_agent(alice, "tech", description="Fixes bugs")
    body = say(alice_client, "/tool transfer_to_tech {}", agent="front", thread_id="thread_ho").json()
    assert [(a["agent"], a["step"]) for a in body["agents"]] == [("front", 1), ("tech", 2)]
    assert body["agents"][0]["tool_calls"][0]["result"] == {"transferred_to": "tech"}
    assert body["message"]["agent"] == "tech"
    assert Thread.objects.for_tenant(alice).get(thread_id="thread_ho").agent == "tech"
    # The next message of the thread goes to the agent holding it, not the one first named.
    follow = say(alice_client, "still broken", thread_id="thread_ho").json()
    assert [a["agent"] for a in follow["agents"]] == ["tech"]
    # Unless the request names another.
    other = say(alice_client, "hi", thread_id="thread_ho", agent="front").json()
    assert [a["agent"] for a in other["agents"]] == ["front"]


def test_a_transfer_to_an_agent_that_is_not_a_handoff_is_refused(
    alice: Any, alice_client: Any, make_agent: Any
) -> None:
    make_agent(alice, "front", handoffs=[])
    make_agent(alice, "tech")
    body = say(alice_client, "/tool transfer_to_tech {}", agent="front").json()
    assert [a["agent"] for a in body["agents"]] == ["front"]
    assert body["agents"][0]["tool_calls"][0]["error"]["code"] == "scope_violation"


def test_a_handoff_the_caller_may_not_run_is_not_offered(
    client_for: Any, alice: Any, make_agent: Any
) -> None:
    make_agent(alice, "front", handoffs=["tech"])
    make_agent(alice, "tech")
    client = client_for(alice, "chat.*,tools.*,agents.front.execute")
    body = say(client, "/tool transfer_to_tech {}", agent="front").json()
    assert [a["agent"] for a in body["agents"]] == ["front"]
    assert body["agents"][0]["tool_calls"][0]["error"]["code"] == "scope_violation"


@override_settings(SLOP_AGENT_MAX_STEPS=2)
def test_too_many_steps_end_with_an_error_and_an_incomplete_reply(
    alice_client: Any, alice: Any, specialists: list[str]
) -> None:
    response = say(alice_client, "go", pattern="sequential", agents=["billing", "tech", "sales"])
    assert response.status_code == 200
    body = response.json()
    assert body["error"]["code"] == "agent_limit_exceeded" and body["error"]["limit"] == "steps"
    assert [a["agent"] for a in body["agents"]] == ["billing", "tech"]
    assert body["message"]["status"] == "incomplete"
    stored = list(Message.objects.for_tenant(alice).filter(role="assistant").order_by("pk"))
    # Both turns ran to their end; the reply (the last one) is as incomplete as the run.
    assert [m.status for m in stored] == ["complete", "incomplete"]


@override_settings(SLOP_AGENT_MAX_FANOUT=2)
def test_too_wide_a_fan_out_ends_the_run_before_any_agent(alice_client: Any, specialists: list[str]) -> None:
    body = say(alice_client, "x", pattern="parallel", agents=["billing", "tech", "sales"]).json()
    assert body["error"]["limit"] == "fanout"
    assert body["agents"] == []
    assert body["message"]["status"] == "incomplete"


@override_settings(SLOP_AGENT_MAX_HANDOFFS=0)
def test_handoffs_past_the_depth_limit_end_the_run(alice: Any, alice_client: Any, make_agent: Any) -> None:
    make_agent(alice, "front", handoffs=["tech"])
    make_agent(alice, "tech")
    body = say(alice_client, "/tool transfer_to_tech {}", agent="front").json()
    assert body["error"]["limit"] == "handoffs"
    assert body["message"]["status"] == "incomplete"


@override_settings(SLOP_AGENT_MAX_SECONDS=0.3)
def test_a_run_past_its_time_ends(alice: Any, alice_client: Any, make_agent: Any) -> None:
    from apps.llm.services import model_config_create

    model_config_create(tenant=alice, name="slow-echo", provider="echo", options={"delay_ms": 200})
    make_agent(alice, "slow", model="slow-echo")
    body = say(alice_client, "one two three four five", agent="slow").json()
    assert body["error"]["limit"] == "seconds"
    assert body["message"]["status"] == "incomplete"
    assert 0 < len(body["message"]["content"]) < len("one two three four five")


@pytest.mark.parametrize(
    ("extra", "field", "code"),
    [
        ({"pattern": "sequential"}, "agents", "validation_error"),
        ({"pattern": "parallel", "agents": []}, "agents", "validation_error"),
        ({"pattern": "route"}, "agents", "validation_error"),
        ({"pattern": "branching", "agent": "billing"}, "branches", "validation_error"),
        ({"agents": ["billing"]}, "agents", "validation_error"),
        (
            {"pattern": "sequential", "agents": ["billing"], "aggregator": "tech"},
            "aggregator",
            "validation_error",
        ),
        ({"pattern": "sequential", "agents": ["billing", "tech", "billing"]}, "agents", "agent_cycle"),
        (
            {"pattern": "parallel", "agents": ["billing", "tech"], "aggregator": "tech"},
            "aggregator",
            "agent_cycle",
        ),
        (
            {"pattern": "branching", "agent": "billing", "branches": [{"agent": "billing"}]},
            "branches[0]",
            "agent_cycle",
        ),
        ({"pattern": "route", "agent": "billing", "agents": ["billing", "tech"]}, "agent", "agent_cycle"),
        ({"pattern": "sequential", "agents": ["billing", "nobody"]}, "agents[1]", "unknown_agent"),
        ({"pattern": "fanfare", "agents": ["billing"]}, "pattern", "validation_error"),
        (
            {
                "pattern": "branching",
                "agent": "tech",
                "branches": [{"when": {"startswith": "x"}, "agent": "billing"}],
            },
            "branches[0].when.startswith",
            "validation_error",
        ),
        (
            {
                "pattern": "branching",
                "agent": "tech",
                "branches": [{"when": {"contains": "a", "regex": "b"}, "agent": "billing"}],
            },
            "branches[0].when",
            "validation_error",
        ),
        (
            {
                "pattern": "branching",
                "agent": "tech",
                "branches": [{"when": {"regex": "(unclosed"}, "agent": "billing"}],
            },
            "branches[0].when.regex",
            "validation_error",
        ),
        (
            {"pattern": "branching", "agent": "tech", "branches": [{"agent": "billing", "priority": 1}]},
            "branches[0].priority",
            "validation_error",
        ),
        ({"agent": "Not An Id"}, "agent", "validation_error"),
    ],
)
def test_bad_agent_requests_are_400_naming_the_problem(
    alice_client: Any, specialists: list[str], extra: dict[str, Any], field: str, code: str
) -> None:
    response = say(alice_client, "hi", **extra)
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == code, body
    assert field in body.get("details", {}), body
    assert not Message.objects.unscoped().exists()


def test_a_handoff_to_an_anthropic_agent_is_told_as_text(
    alice: Any, alice_client: Any, make_agent: Any, anthropic_upstream: Any
) -> None:
    """Anthropic refuses a history that calls a tool its request does not describe."""
    from apps.llm.services import model_config_create

    model_config_create(
        tenant=alice,
        name="claude",
        provider="anthropic",
        base_url=anthropic_upstream.url,
        api_key=anthropic_upstream.api_key,
    )
    make_agent(alice, "front", handoffs=["expert"])
    make_agent(alice, "expert", model="claude", tools="none")
    body = say(alice_client, "/tool transfer_to_expert {}", agent="front").json()
    assert [a["agent"] for a in body["agents"]] == ["front", "expert"]
    assert body["message"]["status"] == "complete"
    sent = anthropic_upstream.requests[-1]["messages"]
    assert "tool_use" not in str(sent)
    assert "[front handed the conversation over to expert]" in str(sent)
