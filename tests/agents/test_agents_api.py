"""GET/POST /agents and GET/PUT/DELETE /agents/:id: shapes, defaults, what an agent may name."""

from __future__ import annotations

from typing import Any

import pytest

from apps.agents.models import Agent
from apps.llm.services import model_config_create

pytestmark = pytest.mark.django_db

SUPPORT = {
    "id": "support",
    "name": "Support",
    "description": "Answers product questions and troubleshooting",
    "instructions": "Be brief and kind.",
    "tools": ["calculator"],
    "memory_prefix": "support/",
    "temperature": 0.3,
    "max_tokens": 500,
}


def create(client: Any, **fields: Any) -> dict[str, Any]:
    response = client.post("/agents", {**SUPPORT, **fields}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["agent"]


def test_create_answers_201_with_the_whole_agent(alice_client) -> None:
    response = alice_client.post("/agents", SUPPORT, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "created"
    agent = body["agent"]
    assert {key: agent[key] for key in SUPPORT} == SUPPORT
    assert agent["model"] is None and agent["handoffs"] == [] and agent["resources_prefix"] == ""
    assert agent["created_at"].endswith("Z") and agent["updated_at"].endswith("Z")
    assert alice_client.get("/agents/support").json() == agent


def test_defaults_for_a_bare_agent(alice_client, alice) -> None:
    agent = alice_client.post("/agents", {"id": "bare"}, format="json").json()["agent"]
    assert agent["name"] == "bare" and agent["tools"] == "auto" and agent["temperature"] is None
    assert Agent.objects.for_tenant(alice).get(slug="bare").tools == "auto"


def test_an_existing_id_is_a_409_and_changes_nothing(alice_client, alice) -> None:
    create(alice_client)
    again = alice_client.post("/agents", {"id": "support", "name": "Other"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert "support" in again.json()["error"]
    assert Agent.objects.for_tenant(alice).get(slug="support").name == "Support"


def test_list_is_newest_first_and_paginated(alice_client) -> None:
    for name in ("a1", "a2", "a3"):
        create(alice_client, id=name)
    first = alice_client.get("/agents?limit=2").json()
    assert [agent["id"] for agent in first["agents"]] == ["a3", "a2"]
    second = alice_client.get(f"/agents?limit=2&cursor={first['next_cursor']}").json()
    assert [agent["id"] for agent in second["agents"]] == ["a1"] and second["next_cursor"] is None
    assert alice_client.get("/agents?limit=0").status_code == 400


def test_put_is_partial(alice_client) -> None:
    before = create(alice_client)
    response = alice_client.put(
        "/agents/support", {"description": "Handles refunds", "model": "echo"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "updated"
    after = body["agent"]
    assert after["description"] == "Handles refunds" and after["model"] == "echo"
    unchanged = {k: v for k, v in before.items() if k not in ("description", "model", "updated_at")}
    assert {k: after[k] for k in unchanged} == unchanged
    # null goes back to the default model; the same id may be sent; an empty body changes nothing.
    assert (
        alice_client.put("/agents/support", {"model": None, "id": "support"}, format="json").json()["agent"][
            "model"
        ]
        is None
    )
    assert alice_client.put("/agents/support", {}, format="json").status_code == 200


def test_put_cannot_rename(alice_client) -> None:
    create(alice_client)
    response = alice_client.put("/agents/support", {"id": "other"}, format="json")
    assert response.status_code == 400 and "id" in response.json()["details"]
    assert alice_client.get("/agents/other").status_code == 404


def test_delete(alice_client, alice) -> None:
    create(alice_client)
    response = alice_client.delete("/agents/support")
    assert response.status_code == 200 and response.json() == {"status": "deleted", "id": "support"}
    assert not Agent.objects.for_tenant(alice).exists()
    assert alice_client.delete("/agents/support").status_code == 404
    assert alice_client.get("/agents/support").json()["code"] == "not_found"
    assert alice_client.put("/agents/support", {"name": "x"}, format="json").status_code == 404


# --- what an agent names must be the team's -------------------------------------------------


def test_handoffs_name_existing_agents_never_itself(alice_client) -> None:
    create(alice_client, id="billing", handoffs=[])
    unknown = alice_client.post(
        "/agents", {"id": "triage", "handoffs": ["billing", "ghost", "nobody"]}, format="json"
    )
    assert unknown.status_code == 400
    assert unknown.json()["details"] == {"handoffs": ["Unknown agents of this team: ghost, nobody."]}
    itself = alice_client.post("/agents", {"id": "triage", "handoffs": ["triage"]}, format="json")
    assert itself.status_code == 400 and "itself" in itself.json()["details"]["handoffs"][0]
    triage = create(alice_client, id="triage", handoffs=["billing"])
    assert triage["handoffs"] == ["billing"]
    itself = alice_client.put("/agents/billing", {"handoffs": ["billing"]}, format="json")
    assert itself.status_code == 400
    # Handing back and forth is allowed: a run bounds the depth of handoffs.
    assert alice_client.put("/agents/billing", {"handoffs": ["triage"]}, format="json").status_code == 200


def test_an_agent_others_hand_off_to_is_not_deleted(alice_client, alice) -> None:
    create(alice_client, id="billing")
    create(alice_client, id="triage", handoffs=["billing"])
    create(alice_client, id="sales", handoffs=["billing"])
    refused = alice_client.delete("/agents/billing")
    assert refused.status_code == 409
    assert refused.json()["handoffs_from"] == ["sales", "triage"]
    assert "sales, triage" in refused.json()["error"]
    assert Agent.objects.for_tenant(alice).filter(slug="billing").exists()
    for name in ("sales", "triage"):
        alice_client.put(f"/agents/{name}", {"handoffs": []}, format="json")
    assert alice_client.delete("/agents/billing").status_code == 200


def test_tools_are_auto_none_or_tools_of_the_team(alice_client, alice) -> None:
    assert create(alice_client, id="a", tools="none")["tools"] == "none"
    unknown = alice_client.post("/agents", {"id": "b", "tools": ["calculator", "rm-rf"]}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["details"]["tools"][0].startswith("Unknown tools: rm-rf; this team has: calculator")
    for bad in ("all", 5, ["calculator", 3], ["calculator", "calculator"], {"calculator": True}):
        response = alice_client.post("/agents", {"id": "b", "tools": bad}, format="json")
        assert response.status_code == 400 and "tools" in response.json()["details"], bad
    # A webhook tool of the team counts.
    hook = {"url": "https://93.184.215.14/hook", "description": "Looks things up"}
    assert alice_client.put("/tools/lookup", hook, format="json").status_code == 201
    assert create(alice_client, id="b", tools=["lookup", "memory_search"])["tools"] == [
        "lookup",
        "memory_search",
    ]


def test_model_is_one_of_the_teams(alice_client, alice, charlie) -> None:
    unknown = alice_client.post("/agents", {"id": "a", "model": "gpt-imaginary"}, format="json")
    assert unknown.status_code == 400
    assert "this team can use: echo" in unknown.json()["details"]["model"][0]
    model_config_create(tenant=alice, name="local", provider="echo")
    assert create(alice_client, id="a", model="local")["model"] == "local"
    model_config_create(tenant=charlie, name="charlies", provider="echo")
    assert alice_client.put("/agents/a", {"model": "charlies"}, format="json").status_code == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "Support"}, "id"),
        ({"id": "a" * 65}, "id"),
        ({"id": "a.b"}, "id"),
        ({"id": 5}, "id"),
        ({"name": "no id"}, "id"),
        ({"id": "a", "temperature": 2.5}, "temperature"),
        ({"id": "a", "temperature": -0.1}, "temperature"),
        ({"id": "a", "temperature": "0.5"}, "temperature"),
        ({"id": "a", "max_tokens": 0}, "max_tokens"),
        ({"id": "a", "max_tokens": 1_000_001}, "max_tokens"),
        ({"id": "a", "max_tokens": 2.5}, "max_tokens"),
        ({"id": "a", "handoffs": "billing"}, "handoffs"),
        ({"id": "a", "handoffs": ["Bad Id"]}, "handoffs"),
        ({"id": "a", "handoffs": ["b", "b"]}, "handoffs"),
        ({"id": "a", "name": 3}, "name"),
        ({"id": "a", "name": "n" * 201}, "name"),
        ({"id": "a", "instructions": ["x"]}, "instructions"),
        ({"id": "a", "pattern": "route"}, "pattern"),
        ({"id": "a", "created_at": "2020-01-01T00:00:00Z"}, "created_at"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(alice_client, alice, body, field) -> None:
    response = alice_client.post("/agents", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert any(name.split(".")[0] == field for name in response.json()["details"]), response.json()
    assert not Agent.objects.for_tenant(alice).exists()


def test_a_body_that_is_not_an_object_is_a_400(alice_client) -> None:
    create(alice_client)
    for method, path in (("post", "/agents"), ("put", "/agents/support")):
        response = getattr(alice_client, method)(path, ["support"], format="json")
        assert response.status_code == 400 and response.json()["code"] == "invalid_request"
    assert alice_client.put("/agents/support", {"colour": "red"}, format="json").json()["details"] == {
        "colour": ["Unknown field: an agent has no such setting."]
    }
