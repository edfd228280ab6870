"""The agents admin keeps the API's rules: the team's own tools, models and agents, and no delete
of an agent others hand off to."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apps.agents.models import Agent
from apps.agents.services import agent_create

pytestmark = pytest.mark.django_db

ADD = "/admin/agents/agent/add/"


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("operator", "op@example.com", "pw-for-tests-only"))
    return client


def _form(tenant: Any, **fields: Any) -> dict[str, Any]:
    return {
        "tenant": tenant.pk,
        "slug": "support",
        "name": "Support",
        "tools": '"auto"',
        "handoffs": "[]",
        "model": "",
        **fields,
    }


def test_an_operator_creates_an_agent_with_the_apis_rules(operator, alice, charlie) -> None:
    agent_create(tenant=charlie, agent_id="charlies", fields={})
    page = operator.post(ADD, _form(alice, tools='["rm-rf"]', handoffs='["charlies"]', model="nope"))
    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert errors["tools"][0].startswith("Unknown tools: rm-rf")
    assert errors["handoffs"] == ["Unknown agents of this team: charlies."]
    assert errors["model"][0].startswith("Unknown model 'nope'")
    bad_id = operator.post(ADD, _form(alice, slug="Not Valid", tools='"all"'))
    assert {"slug", "tools"} <= set(bad_id.context["adminform"].form.errors)
    assert not Agent.objects.unscoped().filter(tenant=alice).exists()
    assert operator.post(ADD, _form(alice, tools='["calculator"]')).status_code == 302
    agent = Agent.objects.for_tenant(alice).get(slug="support")
    assert agent.tools == ["calculator"] and agent.name == "Support"
    clash = operator.post(ADD, _form(alice))
    assert "already exists" in str(clash.context["adminform"].form.errors), clash.context[
        "adminform"
    ].form.errors
    assert Agent.objects.for_tenant(alice).count() == 1


def test_an_agent_others_hand_off_to_is_protected(operator, alice) -> None:
    billing = agent_create(tenant=alice, agent_id="billing", fields={})
    triage = agent_create(tenant=alice, agent_id="triage", fields={"handoffs": ["billing"]})
    url = f"/admin/agents/agent/{billing.pk}/delete/"
    page = operator.get(url)
    assert "Agent triage hands off to billing" in page.content.decode()
    operator.post(url, {"post": "yes"})
    assert Agent.objects.for_tenant(alice).filter(slug="billing").exists()
    # Deleting both together is fine.
    action = {"action": "delete_selected", "_selected_action": [billing.pk, triage.pk], "post": "yes"}
    operator.post("/admin/agents/agent/", action)
    assert not Agent.objects.for_tenant(alice).exists()
