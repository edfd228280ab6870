"""Agents collaborate through the tenant's memory: one stores a finding with the built-in
`memory_write` tool, the next finds it by meaning with `memory_search` (the seed's collaboration
example), each within its `memory_prefix` and the caller's memory scopes.

`memory_write` is built by the agents CRUD work (apps/memory/tools.py); until it is merged these
tests fail on purpose (a missing tool is a scope-violation result, not a skip)."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def say(client: Any, content: str, **extra: Any) -> Any:
    return client.post("/chat", {"messages": [{"content": content}], **extra}, format="json")


def test_one_agent_stores_and_the_next_finds_it_by_meaning(
    alice_client: Any, alice: Any, make_agent: Any
) -> None:
    make_agent(alice, "researcher", memory_prefix="project/", description="Finds facts")
    make_agent(alice, "writer", memory_prefix="project/", description="Writes it up")
    store = {"key": "project/launch", "value": "The product launch moved to March 14"}
    stored = say(
        alice_client, f"/tool memory_write {json.dumps(store)}", agent="researcher", thread_id="thread_team"
    ).json()
    write_call = stored["agents"][0]["tool_calls"][0]
    assert "error" not in write_call, write_call
    query = {"query": "When is the release date?"}
    found = say(
        alice_client, f"/tool memory_search {json.dumps(query)}", agent="writer", thread_id="thread_team"
    ).json()
    (turn,) = found["agents"]
    assert turn["agent"] == "writer"
    hits = turn["tool_calls"][0]["result"]
    assert hits[0]["key"] == "project/launch"
    assert "March 14" in json.dumps(hits[0]["value"])


def test_an_agent_cannot_write_outside_its_prefix(alice_client: Any, alice: Any, make_agent: Any) -> None:
    make_agent(alice, "researcher", memory_prefix="project/")
    store = {"key": "hr/salaries", "value": "secret"}
    body = say(alice_client, f"/tool memory_write {json.dumps(store)}", agent="researcher").json()
    call = body["agents"][0]["tool_calls"][0]
    assert call["error"]["code"] == "scope_violation"
    assert call["error"]["required_scope"] == "memory.hr/salaries.write"
