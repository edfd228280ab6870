"""The agents page: every member sees the team's agents; admins and owners create, edit and delete
them with the /agents API's validation; another team's agents never show."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from apps.agents.models import Agent
from apps.agents.services import agent_create
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db


def url(team: Tenant, tail: str = "") -> str:
    return f"/console/t/{team.slug}/agents{tail}"


def form_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "billing",
        "name": "Billing",
        "description": "Invoices and refunds",
        "model": "",
        "instructions": "Be precise.",
        "tools_mode": "auto",
        "memory_prefix": "billing/",
        "resources_prefix": "",
        "temperature": "",
        "max_tokens": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.mark.parametrize("role", ["member", "admin", "owner"])
def test_every_role_sees_the_list_with_a_playground_link(
    console_for: Callable[..., Client], alice: Tenant, role: str
) -> None:
    agent_create(tenant=alice, agent_id="tech", fields={"description": "fixes things"})
    agent_create(
        tenant=alice,
        agent_id="support",
        fields={
            "description": "answers questions",
            "tools": ["calculator"],
            "handoffs": ["tech"],
            "model": "echo",
        },
    )
    response = console_for(alice, role).get(url(alice))
    assert response.status_code == 200
    html = response.content.decode()
    row = html[html.index('id="agent-support"') :]
    row = row[: row.index("</tr>")]
    assert "answers questions" in row and "echo" in row and "calculator" in row and "<code>tech</code>" in row
    assert f'href="/console/t/{alice.slug}/playground?agent=support"' in row
    assert (f'href="{url(alice, "/support/edit")}"' in row) is (role != "member")
    assert ("New agent" in html) is (role != "member")


def test_members_may_not_write(console_for: Callable[..., Client], alice: Tenant) -> None:
    agent_create(tenant=alice, agent_id="tech", fields={})
    member = console_for(alice, "member")
    assert member.get(url(alice, "/new")).status_code == 403
    assert member.post(url(alice, "/new"), form_data()).status_code == 403
    assert member.get(url(alice, "/tech/edit")).status_code == 403
    assert member.post(url(alice, "/tech/edit"), form_data(id=None, name="renamed")).status_code == 403
    assert member.post(url(alice, "/tech/delete")).status_code == 403
    assert list(Agent.objects.for_tenant(alice).values_list("slug", "name")) == [("tech", "tech")]


def test_an_admin_creates_edits_and_deletes_an_agent(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    admin = console_for(alice, "admin")
    form = admin.get(url(alice, "/new"))
    assert (
        form.status_code == 200 and b'for="id_id"' in form.content and b"csrfmiddlewaretoken" in form.content
    )
    created = admin.post(url(alice, "/new"), form_data(tools_mode="list", tools=["calculator"]), follow=True)
    assert created.status_code == 200 and b"Agent billing created." in created.content
    agent = Agent.objects.for_tenant(alice).get(slug="billing")
    assert agent.tools == ["calculator"] and agent.memory_prefix == "billing/" and agent.name == "Billing"

    edit = admin.get(url(alice, "/billing/edit"))
    assert edit.status_code == 200 and b'value="billing/"' in edit.content
    saved = admin.post(
        url(alice, "/billing/edit"), form_data(id=None, name="Billing desk", tools_mode="none")
    )
    assert saved.status_code == 302
    agent.refresh_from_db()
    assert agent.name == "Billing desk" and agent.tools == "none" and agent.slug == "billing"

    assert admin.get(url(alice, "/billing/delete")).status_code == 200
    deleted = admin.post(url(alice, "/billing/delete"), follow=True)
    assert b"Agent billing deleted." in deleted.content
    assert not Agent.objects.for_tenant(alice).exists()


def test_the_apis_validation_errors_show_beside_their_fields(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    owner = console_for(alice, "owner")
    agent_create(tenant=alice, agent_id="billing", fields={})
    bad_id = owner.post(url(alice, "/new"), form_data(id="Not An Id"))
    assert bad_id.status_code == 400
    assert b"Must be 1-64 of a-z, 0-9, _ and -." in bad_id.content
    taken = owner.post(url(alice, "/new"), form_data())
    assert taken.status_code == 409 and b"Agent already exists: billing" in taken.content
    too_hot = owner.post(url(alice, "/new"), form_data(id="hot", temperature="3"))
    assert too_hot.status_code == 400 and b"errorlist" in too_hot.content
    unknown_tool = owner.post(url(alice, "/new"), form_data(id="tooly", tools_mode="list", tools=["nope"]))
    assert unknown_tool.status_code == 400 and b"errorlist" in unknown_tool.content
    ticked_but_auto = owner.post(url(alice, "/new"), form_data(id="auto", tools=["calculator"]))
    assert ticked_but_auto.status_code == 400 and b"Only these tools" in ticked_but_auto.content
    none_ticked = owner.post(url(alice, "/new"), form_data(id="empty", tools_mode="list"))
    assert none_ticked.status_code == 400 and b"Tick at least one tool" in none_ticked.content
    assert set(Agent.objects.for_tenant(alice).values_list("slug", flat=True)) == {"billing"}


def test_deleting_a_handoff_target_is_a_clear_409(console_for: Callable[..., Client], alice: Tenant) -> None:
    agent_create(tenant=alice, agent_id="tech", fields={})
    agent_create(tenant=alice, agent_id="support", fields={"handoffs": ["tech"]})
    owner = console_for(alice, "owner")
    confirm = owner.get(url(alice, "/tech/delete")).content.decode()
    assert "Remove it from their handoffs first" in confirm and url(alice, "/support/edit") in confirm
    refused = owner.post(url(alice, "/tech/delete"))
    assert refused.status_code == 409
    html = refused.content.decode()
    assert "Not deleted." in html and "in the handoffs of support" in html
    assert Agent.objects.for_tenant(alice).filter(slug="tech").exists()


def test_an_agent_cannot_hand_off_to_itself_or_to_another_teams_agent(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant
) -> None:
    agent_create(tenant=charlie, agent_id="charlie-agent", fields={})
    agent_create(tenant=alice, agent_id="tech", fields={})
    owner = console_for(alice, "owner")
    form = owner.get(url(alice, "/tech/edit")).content.decode()
    assert 'value="tech"' in form  # its id, shown disabled
    assert 'name="handoffs" value="tech"' not in form and "charlie-agent" not in form
    foreign = owner.post(url(alice, "/new"), form_data(id="sneaky", handoffs=["charlie-agent"]))
    assert foreign.status_code == 400 and not Agent.objects.for_tenant(alice).filter(slug="sneaky").exists()


def test_another_teams_agents_are_404_and_never_listed(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant
) -> None:
    agent_create(tenant=charlie, agent_id="charlie-agent", fields={"description": "charlie's secret"})
    owner = console_for(alice, "owner")
    assert b"charlie-agent" not in owner.get(url(alice)).content
    for tail in ("/charlie-agent/edit", "/charlie-agent/delete"):
        assert owner.get(url(alice, tail)).status_code == 404
        assert owner.post(url(alice, tail), form_data(id=None)).status_code == 404
    assert owner.get(url(charlie)).status_code == 404
    assert owner.post(url(charlie, "/new"), form_data()).status_code == 404
    assert Agent.objects.for_tenant(charlie).count() == 1 and not Agent.objects.for_tenant(alice).exists()


def test_the_services_errors_show_in_the_form(console_for: Callable[..., Client], alice: Tenant) -> None:
    """What only the services can see (a tool the team no longer has) comes back beside its field."""
    Agent.objects.for_tenant(alice).create(tenant=alice, slug="legacy", tools=["gone_tool"])
    owner = console_for(alice, "owner")
    form = owner.get(url(alice, "/legacy/edit")).content.decode()
    assert 'value="gone_tool"' in form  # still a choice, so the edit can keep or drop it
    kept = owner.post(url(alice, "/legacy/edit"), form_data(id=None, tools_mode="list", tools=["gone_tool"]))
    assert kept.status_code == 400
    assert b"Unknown tools: gone_tool; this team has: calculator" in kept.content
    assert Agent.objects.for_tenant(alice).get(slug="legacy").name == ""
