"""A tenant's own bounds of a multi-agent run (Tenant.agent_limits) override SLOP_AGENT_MAX_*."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from apps.tenants.models import validate_agent_limits

pytestmark = pytest.mark.django_db


def _sequential(client: Any, agents: list[str]) -> Any:
    body = {"messages": [{"content": "go"}], "pattern": "sequential", "agents": agents}
    return client.post("/chat", body, format="json").json()


def test_a_tenant_with_fewer_steps_stops_there_and_others_keep_the_platforms(
    alice: Any, charlie: Any, alice_client: Any, charlie_client: Any, make_agent: Any
) -> None:
    for tenant in (alice, charlie):
        for slug in ("a", "b", "c"):
            make_agent(tenant, slug)
    alice.agent_limits = {"max_steps": 2}
    alice.save()
    stopped = _sequential(alice_client, ["a", "b", "c"])
    assert stopped["message"]["status"] == "incomplete"
    assert stopped["error"]["limit"] == "steps" and [s["agent"] for s in stopped["agents"]] == ["a", "b"]
    complete = _sequential(charlie_client, ["a", "b", "c"])
    assert complete["message"]["status"] == "complete" and len(complete["agents"]) == 3


@pytest.mark.parametrize("value", [{"max_stepz": 3}, {"max_steps": 0}, {"max_seconds": "10"}, []])
def test_bad_agent_limits_are_refused(value: Any) -> None:
    with pytest.raises(ValidationError):
        validate_agent_limits(value)
