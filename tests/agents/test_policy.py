"""An agent never exceeds the key that calls it: its tools, memory prefix and resources prefix are
its configuration intersected with the caller's effective scope."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apps.agents.models import Agent
from apps.agents.policy import agent_principal
from apps.memory.services import memory_item_store
from apps.tenants.scopes import Action

pytestmark = pytest.mark.django_db

CALC = '/tool calculator {"expression": "2+3"}'


def say(client: Any, content: str, **extra: Any) -> Any:
    return client.post("/chat", {"messages": [{"content": content}], **extra}, format="json")


def only_call(body: dict[str, Any]) -> dict[str, Any]:
    (turn,) = body["agents"]
    (call,) = turn["tool_calls"]
    return call


def test_an_agent_with_a_tool_list_runs_only_those(alice_client: Any, alice: Any, make_agent: Any) -> None:
    make_agent(alice, "clock", tools=["current_time"])
    call = only_call(say(alice_client, CALC, agent="clock").json())
    assert call["error"]["code"] == "scope_violation"
    assert call["error"]["required_scope"] == "tools.calculator.execute"


def test_an_agent_without_tools_runs_none(alice_client: Any, alice: Any, make_agent: Any) -> None:
    make_agent(alice, "plain", tools="none")
    assert only_call(say(alice_client, CALC, agent="plain").json())["error"]["code"] == "scope_violation"


def test_the_callers_scope_narrows_an_agent_with_every_tool(
    client_for: Any, alice: Any, make_agent: Any
) -> None:
    make_agent(alice, "helper", tools="auto")
    wide = client_for(alice, "*")
    assert only_call(say(wide, CALC, agent="helper").json())["result"] == 5
    narrowed = client_for(
        alice, "*", scope_header="chat.write,agents.helper.execute,tools.current_time.execute"
    )
    call = only_call(say(narrowed, CALC, agent="helper").json())
    assert call["error"]["code"] == "scope_violation"
    # The agent's list and the caller's scope together: nothing is left of ["calculator"].
    make_agent(alice, "calc", tools=["calculator"])
    narrowed = client_for(
        alice, "*", scope_header="chat.write,agents.calc.execute,tools.current_time.execute"
    )
    assert only_call(say(narrowed, CALC, agent="calc").json())["error"]["code"] == "scope_violation"


def test_the_requests_tool_list_narrows_the_agent_too(alice_client: Any, alice: Any, make_agent: Any) -> None:
    make_agent(alice, "helper", tools="auto")
    body = say(alice_client, CALC, agent="helper", tools=["current_time"]).json()
    assert only_call(body)["error"]["code"] == "scope_violation"


def _search(client: Any, agent: str, query: str) -> list[str]:
    arguments = json.dumps({"query": query, "limit": 10})
    call = only_call(say(client, f"/tool memory_search {arguments}", agent=agent).json())
    assert "result" in call, call
    return sorted(hit["key"] for hit in call["result"])


def test_memory_tools_stay_inside_the_agents_prefix_and_the_callers(
    client_for: Any, alice: Any, make_agent: Any
) -> None:
    for key in ("billing/plan", "billing/card", "tech/bug", "private/diary"):
        memory_item_store(tenant=alice, key=key, value=f"notes about {key}")
    make_agent(alice, "billing", memory_prefix="billing/")
    make_agent(alice, "everything", memory_prefix="")
    client = client_for(alice, "*")
    assert _search(client, "billing", "notes") == ["billing/card", "billing/plan"]
    assert _search(client, "everything", "notes") == [
        "billing/card",
        "billing/plan",
        "private/diary",
        "tech/bug",
    ]
    # The caller's own memory scope narrows further: the agent's prefix ∩ the key's.
    narrowed = client_for(alice, "chat.*,agents.*,tools.*,memory.billing/plan.read")
    assert _search(narrowed, "billing", "notes") == ["billing/plan"]
    assert _search(narrowed, "everything", "notes") == ["billing/plan"]


def test_agent_principal_intersects_scopes(alice: Any, make_key: Any) -> None:
    from apps.tenants.authentication import authenticate_key, principal_of

    raw = make_key(alice, "chat.*,agents.*,tools.calculator.execute,memory.shared.*,resources.*")
    principal = principal_of(authenticate_key(raw), None)
    agent = Agent(tenant=alice, slug="x", tools=["calculator", "current_time"], memory_prefix="shared/team/")
    acting = agent_principal(principal, agent)
    assert acting.scopes.allows(Action("tools", "execute", "calculator"))
    assert not acting.scopes.allows(Action("tools", "execute", "current_time"))  # the key says no
    assert acting.scopes.prefixes("memory", "read") == ["shared/team/"]
    assert not acting.scopes.allows(Action("memory", "write", "shared/other"))
    assert acting.scopes.allows(Action("memory", "write", "shared/team/notes"))
    assert acting.scopes.prefixes("resources", "read") is None
