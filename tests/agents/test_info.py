"""GET /info: the patterns agents run in, the /agents endpoints, and with a key the caller's agents."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.agents.services import agent_create, agent_delete, agent_update

pytestmark = pytest.mark.django_db


def test_anonymous_info_lists_the_patterns_and_the_endpoints() -> None:
    body = Client().get("/info").json()
    assert set(body["capabilities"]["patterns"]) == {"single", "route", "sequential", "parallel", "branching"}
    endpoints = {endpoint["path"]: endpoint["methods"] for endpoint in body["endpoints"]}
    assert endpoints["/agents"] == ["GET", "POST"]
    assert endpoints["/agents/:agent_id"] == ["DELETE", "GET", "PUT"]
    assert "agents" not in body  # no caller, no agents


def test_with_a_key_info_lists_the_callers_agents(alice, alice_client: Any) -> None:
    assert alice_client.get("/info").json()["agents"] == []
    agent_create(tenant=alice, agent_id="support", fields={"name": "Support", "description": "Product help"})
    agent_create(tenant=alice, agent_id="billing", fields={"instructions": "never shown in /info"})
    body = alice_client.get("/info").json()
    assert body["agents"] == [
        {"id": "billing", "name": "billing", "description": ""},
        {"id": "support", "name": "Support", "description": "Product help"},
    ]
    assert "never shown" not in str(body)


def test_info_follows_changes_to_agents_at_once(alice, alice_client: Any, charlie_client: Any) -> None:
    """The listing comes from a per-process snapshot: an edit or a delete drops it."""
    agent_create(tenant=alice, agent_id="support", fields={"name": "Support"})
    assert [a["name"] for a in alice_client.get("/info").json()["agents"]] == ["Support"]
    agent_update(tenant=alice, agent_id="support", fields={"name": "Helpdesk"})
    assert [a["name"] for a in alice_client.get("/info").json()["agents"]] == ["Helpdesk"]
    assert charlie_client.get("/info").json()["agents"] == []  # another team's snapshot
    agent_delete(tenant=alice, agent_id="support")
    assert alice_client.get("/info").json()["agents"] == []
