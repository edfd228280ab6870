"""Writes of a team's agents: create, partial update, delete.

What an agent names is checked against the team's data when it is written: its `tools` (the
team's built-in and webhook tools), its `model` (the models the team may use) and its `handoffs`
(other agents of the team, never itself). An agent that others hand off to is not deleted (409
naming them): removing it from their handoffs silently would change agents the request never
named. Handoff targets are locked while an agent is written, and the agent itself while it is
deleted, so a delete and a write that names it cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from apps.agents.models import Agent
from apps.agents.selectors import agent_not_found, agents_handing_off_to
from apps.core.errors import ApplicationError, ValidationFailed
from apps.llm.selectors import available_models
from apps.tenants.models import Tenant
from apps.tools.selectors import tenant_tools

DEFAULTS: dict[str, Any] = {
    "description": "",
    "model": "",
    "instructions": "",
    "tools": "auto",
    "memory_prefix": "",
    "resources_prefix": "",
    "handoffs": [],
    "temperature": None,
    "max_tokens": None,
}
FIELDS = frozenset({"name", *DEFAULTS})


def _listed(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _tool_problem(tenant: Tenant, tools: Any) -> str | None:
    if not isinstance(tools, list) or not tools:
        return None
    known = [spec.id for spec in tenant_tools(tenant=tenant)]
    unknown = [tool for tool in tools if tool not in known]
    if not unknown:
        return None
    return f"Unknown tools: {_listed(unknown)}; this team has: {_listed(known)}."


def _model_problem(tenant: Tenant, model: Any) -> str | None:
    if not model:
        return None
    models = sorted(available_models(tenant=tenant))
    if model in models:
        return None
    return f"Unknown model {model!r}; this team can use: {_listed(models)}."


def _handoff_problem(tenant: Tenant, agent_id: str, handoffs: Any, lock: bool) -> str | None:
    if not handoffs:
        return None
    if agent_id in handoffs:
        return f"An agent cannot hand off to itself ({agent_id})."
    targets = Agent.objects.for_tenant(tenant).filter(slug__in=handoffs)
    if lock:  # until the write commits: a concurrent delete of a target waits, then sees this agent
        targets = targets.select_for_update()
    existing = set(targets.values_list("slug", flat=True))
    missing = [name for name in handoffs if name not in existing]
    if missing:
        return f"Unknown agents of this team: {_listed(missing)}."
    return None


def agent_reference_problems(
    *, tenant: Tenant, agent_id: str, values: Mapping[str, Any], lock: bool = False
) -> dict[str, list[str]]:
    """What the values name that the team does not have, by field (the admin's form shows it)."""
    return {
        field: [problem]
        for field, problem in (
            ("tools", _tool_problem(tenant, values.get("tools"))),
            ("model", _model_problem(tenant, values.get("model"))),
            ("handoffs", _handoff_problem(tenant, agent_id, values.get("handoffs"), lock)),
        )
        if problem is not None
    }


def _check_references(tenant: Tenant, agent_id: str, values: Mapping[str, Any]) -> None:
    problems = agent_reference_problems(tenant=tenant, agent_id=agent_id, values=values, lock=True)
    if problems:
        raise ValidationFailed(problems)


def _conflict(agent_id: str) -> ApplicationError:
    return ApplicationError(f"Agent already exists: {agent_id}", code="conflict", status=409)


def agent_create(*, tenant: Tenant, agent_id: str, fields: Mapping[str, Any]) -> Agent:
    """A new agent (409 when the id exists); fields left out get DEFAULTS, the name the id."""
    values = {"name": agent_id, **DEFAULTS, **{k: v for k, v in fields.items() if k in FIELDS}}
    with transaction.atomic():
        if Agent.objects.for_tenant(tenant).filter(slug=agent_id).exists():
            raise _conflict(agent_id)
        _check_references(tenant, agent_id, values)
        try:
            with transaction.atomic():  # a savepoint: a concurrent create of the same id loses here
                return Agent.objects.create(tenant=tenant, slug=agent_id, **values)
        except IntegrityError:
            raise _conflict(agent_id) from None


def agent_update(*, tenant: Tenant, agent_id: str, fields: Mapping[str, Any]) -> Agent:
    """Replace the fields sent (404 when the agent is missing); `id` may be sent, unchanged."""
    sent_id = fields.get("id")
    if sent_id is not None and sent_id != agent_id:
        raise ValidationFailed(
            {"id": [f"An agent's id cannot change (it is {agent_id}); create a new agent."]}
        )
    values = {k: v for k, v in fields.items() if k in FIELDS}
    with transaction.atomic():
        agent = Agent.objects.for_tenant(tenant).select_for_update().filter(slug=agent_id).first()
        if agent is None:
            raise agent_not_found(agent_id)
        _check_references(tenant, agent_id, values)
        for name, value in values.items():
            setattr(agent, name, value)
        agent.save()
    return agent


def agent_delete(*, tenant: Tenant, agent_id: str) -> None:
    """Delete the agent (404 when missing; 409 naming the agents that hand off to it)."""
    with transaction.atomic():
        agent = Agent.objects.for_tenant(tenant).select_for_update().filter(slug=agent_id).first()
        if agent is None:
            raise agent_not_found(agent_id)
        referrers = agents_handing_off_to(tenant=tenant, agent_id=agent_id)
        if referrers:
            raise ApplicationError(
                f"Agent {agent_id} is in the handoffs of {_listed(referrers)}; "
                "remove it from their handoffs first",
                code="conflict",
                status=409,
                extra={"handoffs_from": referrers},
            )
        agent.delete()
