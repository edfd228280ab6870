"""Tenant isolation and agents.<id>.read/.write scopes on every /agents endpoint.

Charlie's team never sees Alice's agents (404 on every id, nothing in lists, nothing in /info) and
may use the same ids on his own; agent ids match scopes exactly; lists leave out what the caller
may not read; a caller with no agents scope gets the seed's 403 naming the scope needed."""

from __future__ import annotations

from typing import Any

import pytest

from apps.agents.models import Agent
from apps.agents.services import agent_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_agents(alice) -> Any:
    agent_create(tenant=alice, agent_id="billing", fields={"description": "Alice's secret billing agent"})
    agent_create(tenant=alice, agent_id="support", fields={"handoffs": ["billing"]})
    return alice


def _refusal(response: Any, scope: str) -> None:
    assert response.status_code == 403, response.json()
    assert response.json() == {
        "error": f"Scope violation: {scope} requires explicit permission",
        "permitted": False,
        "required_scope": scope,
        "code": "scope_violation",
        "status": 403,
    }


def test_charlie_gets_404_for_alices_agents(alices_agents, charlie_client) -> None:
    for method in ("get", "delete"):
        response = getattr(charlie_client, method)("/agents/billing")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert charlie_client.put("/agents/billing", {"name": "pwned"}, format="json").status_code == 404
    assert Agent.objects.for_tenant(alices_agents).get(slug="billing").name == "billing"


def test_charlie_sees_none_of_alices_agents(alices_agents, charlie_client) -> None:
    assert charlie_client.get("/agents").json() == {"agents": [], "next_cursor": None}
    info = charlie_client.get("/info").json()
    # ("billing" is also the name of /billing, so the check is on what only Alice's agents say.)
    assert info["agents"] == [] and "secret billing agent" not in str(info)


def test_charlie_cannot_name_alices_agents_and_may_reuse_their_ids(alices_agents, charlie_client) -> None:
    refused = charlie_client.post("/agents", {"id": "triage", "handoffs": ["billing"]}, format="json")
    assert refused.status_code == 400 and "billing" in refused.json()["details"]["handoffs"][0]
    assert (
        charlie_client.post("/agents", {"id": "billing", "name": "Charlie's"}, format="json").status_code
        == 201
    )
    assert charlie_client.get("/agents/billing").json()["name"] == "Charlie's"
    assert charlie_client.delete("/agents/billing").status_code == 200
    assert Agent.objects.for_tenant(alices_agents).get(slug="billing").name == "billing"


def test_no_agents_scope_is_a_403_on_every_endpoint(alices_agents, client_for, alice) -> None:
    other = client_for(alice, "chat.*,tools.*,memory.*,resources.*")
    _refusal(other.get("/agents"), "agents.read")
    _refusal(other.post("/agents", {"id": "new"}, format="json"), "agents.new.write")
    _refusal(other.get("/agents/billing"), "agents.billing.read")
    _refusal(other.put("/agents/billing", {"name": "x"}, format="json"), "agents.billing.write")
    _refusal(other.delete("/agents/billing"), "agents.billing.write")
    assert Agent.objects.for_tenant(alice).count() == 2


def test_read_does_not_write_and_ids_match_exactly(alices_agents, client_for, alice) -> None:
    reader = client_for(alice, "agents.billing.read")
    assert reader.get("/agents/billing").status_code == 200
    _refusal(reader.get("/agents/support"), "agents.support.read")
    _refusal(reader.get("/agents/bill"), "agents.bill.read")
    _refusal(reader.put("/agents/billing", {"name": "x"}, format="json"), "agents.billing.write")
    _refusal(reader.delete("/agents/billing"), "agents.billing.write")
    writer = client_for(alice, "agents.new.write")
    assert writer.post("/agents", {"id": "new"}, format="json").status_code == 201
    _refusal(writer.post("/agents", {"id": "newer"}, format="json"), "agents.newer.write")
    _refusal(writer.get("/agents/new"), "agents.new.read")  # writing is not reading


def test_lists_and_info_hold_only_readable_agents(alices_agents, client_for, alice) -> None:
    reader = client_for(alice, "agents.support.read")
    assert [agent["id"] for agent in reader.get("/agents").json()["agents"]] == ["support"]
    assert reader.get("/info").json()["agents"] == [{"id": "support", "name": "support", "description": ""}]
    every = client_for(alice, "agents.read")
    assert {agent["id"] for agent in every.get("/agents").json()["agents"]} == {"billing", "support"}
    # The header narrows the key, never widens it.
    narrowed = client_for(alice, "*", scope_header="agents.billing.read")
    assert [agent["id"] for agent in narrowed.get("/agents").json()["agents"]] == ["billing"]
    widened = client_for(alice, "agents.support.read", scope_header="agents.*")
    assert [agent["id"] for agent in widened.get("/agents").json()["agents"]] == ["support"]
    _refusal(client_for(alice, "agents.support.write").get("/agents"), "agents.read")


def test_a_bad_id_in_a_post_is_a_400_before_the_scope_check(client_for, alice) -> None:
    response = client_for(alice, "memory.*").post("/agents", {"id": "Not Valid"}, format="json")
    assert response.status_code == 400 and "id" in response.json()["details"]
