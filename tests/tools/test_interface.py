"""The interface /chat uses: tools_for, tools_executable_by, and a call checked by tool_target
(the declaration /tools uses too) then run by tool_call."""

from __future__ import annotations

from typing import Any

import pytest

from apps.core.errors import ApplicationError
from apps.tenants.access import enforce_target
from apps.tenants.authentication import Principal, principal_for
from apps.tenants.models import Tenant
from apps.tools.access import tool_target
from apps.tools.selectors import tools_executable_by, tools_for
from apps.tools.services import tool_call as run_checked


def tool_call(*, principal: Principal, tool_id: str, **options: Any) -> Any:
    """What the chat model's adapter does: the declared check, then the run."""
    spec = enforce_target(principal, tool_target(principal, tool_id, "execute"))
    return run_checked(principal=principal, spec=spec, **options)


pytestmark = pytest.mark.django_db


@pytest.fixture
def principal(make_key):
    def make(tenant: Tenant, scopes: str = "*", header: str | None = None) -> Any:
        return principal_for(f"Bearer {make_key(tenant, scopes)}", None, header)

    return make


def test_specs_carry_what_a_model_needs(principal, alice) -> None:
    calculator = tools_for(principal=principal(alice))[0]
    assert calculator.id == "calculator"
    assert calculator.description == "Performs mathematical calculations"
    assert calculator.schema["required"] == ["expression"]
    assert calculator.safe is True and calculator.long_running is False


def test_readable_versus_executable(principal, alice) -> None:
    caller = principal(alice, "tools.calculator.read,tools.current_time.execute")
    assert [spec.id for spec in tools_for(principal=caller)] == ["calculator", "current_time"]
    assert [spec.id for spec in tools_executable_by(principal=caller)] == ["current_time"]
    narrowed = principal(alice, "*", header="chat.write,tools.safe.calculator")
    assert [spec.id for spec in tools_executable_by(principal=narrowed)] == ["calculator"]
    assert tools_executable_by(principal=principal(alice, "chat.*")) == []


def test_tool_call_runs_and_refuses(principal, alice) -> None:
    assert tool_call(principal=principal(alice), tool_id="calculator", parameters={"expression": "2*21"}) == {
        "result": 42
    }
    with pytest.raises(ApplicationError) as refused:
        tool_call(
            principal=principal(alice, "tools.current_time.execute"), tool_id="calculator", parameters={}
        )
    assert refused.value.status == 403 and refused.value.code == "scope_violation"
    with pytest.raises(ApplicationError) as invalid:
        tool_call(principal=principal(alice), tool_id="calculator", parameters={"expression": "9**9**9"})
    assert invalid.value.status == 400


@pytest.mark.django_db(transaction=True)
def test_tool_call_of_a_long_running_tool_waits_for_its_job(principal, alice, alice_client) -> None:
    alice_client.put("/tools/calculator", {"long_running": True}, format="json")
    answer = tool_call(
        principal=principal(alice), tool_id="calculator", parameters={"expression": "1+2"}, wait_seconds=5
    )
    assert answer["status"] == "succeeded" and answer["result"] == 3 and answer["job_id"].startswith("job_")
