"""GET /usage and GET /billing: the caller's team only, grouped as asked, bad input a 400."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apps.billing.models import UsageEvent
from apps.tenants.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db


def say(client: Any, text: str, headers: dict[str, str] | None = None, **body: Any) -> None:
    response = client.post(
        "/chat", {"messages": [{"role": "user", "content": text}], **body}, format="json", **(headers or {})
    )
    assert response.status_code == 200, response.content


def work(client: Any) -> None:
    say(client, "one two", headers={"HTTP_X_SLOP_USER": "ann"})
    assert client.post("/agents", {"id": "support"}, format="json").status_code in (201, 409)
    say(client, "three", headers={"HTTP_X_SLOP_USER": "bob"}, agent="support")
    assert client.post("/tools/calculator", {"expression": "2*3"}, format="json").status_code == 200


def test_usage_grouped_every_way(alice: Tenant, alice_client: Any) -> None:
    work(alice_client)
    events = list(UsageEvent.objects.for_tenant(alice))
    today = datetime.now(UTC).date().isoformat()

    by_day = alice_client.get("/usage").json()
    assert by_day["group_by"] == "day" and by_day["to"] == today
    [day] = by_day["usage"]
    assert day["group"] == today and day["requests"] == 3 and day["tool_calls"] == 1
    assert day["input_tokens"] == sum(e.input_tokens for e in events)
    assert day["output_tokens"] == sum(e.output_tokens for e in events)

    by_user = {row["group"]: row for row in alice_client.get("/usage?group_by=user").json()["usage"]}
    assert set(by_user) == {"ann", "bob", None}  # the tool call named no end user
    assert by_user["ann"]["requests"] == 1 and by_user[None]["tool_calls"] == 1
    by_agent = {row["group"] for row in alice_client.get("/usage?group_by=agent").json()["usage"]}
    assert by_agent == {"support", None}
    by_model = {row["group"] for row in alice_client.get("/usage?group_by=model").json()["usage"]}
    assert by_model == {"echo", None}
    prefix = ApiKey.objects.for_tenant(alice).get().prefix
    [by_key] = alice_client.get("/usage?group_by=key").json()["usage"]
    assert by_key["group"] == prefix and by_key["requests"] == 3
    assert by_key["cost"] == "0.000000"  # the free plan prices nothing


def test_usage_costs_at_the_plans_unit_prices(
    alice: Tenant, alice_client: Any, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, unit_prices={"tool_calls": "1000000"})  # one unit of money per call
    work(alice_client)
    [day] = alice_client.get("/usage").json()["usage"]
    assert day["cost"] == "1.000000"


def test_a_range_without_usage_is_empty_and_dates_are_kept(alice_client: Any) -> None:
    work(alice_client)
    answer = alice_client.get("/usage?from=2020-01-01&to=2020-01-31").json()
    assert answer == {"usage": [], "from": "2020-01-01", "to": "2020-01-31", "group_by": "day"}


@pytest.mark.parametrize(
    "query",
    [
        "from=yesterday",
        "from=2026-02-30",
        "group_by=team",
        "from=2026-05-02&to=2026-05-01",
        "from=2020-01-01&to=2026-01-01",
        "limit=5",
    ],
)
def test_bad_usage_queries_are_400s(alice_client: Any, query: str) -> None:
    answer = alice_client.get(f"/usage?{query}")
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] in ("validation_error", "invalid_request")


def test_usage_and_billing_keep_tenants_apart(
    alice: Tenant, charlie: Tenant, alice_client: Any, charlie_client: Any
) -> None:
    work(alice_client)
    for group in ("day", "model", "key", "user", "agent"):
        assert charlie_client.get(f"/usage?group_by={group}").json()["usage"] == []
    assert charlie_client.get("/billing").json()["used"]["tokens"] == 0
    assert alice_client.get("/billing").json()["used"]["tokens"] > 0


def test_usage_and_billing_need_their_scopes(alice: Tenant, client_for: Callable[..., Any]) -> None:
    client = client_for(alice, "chat.*,tools.*")
    for path, scope in (("/usage", "usage.read"), ("/billing", "billing.read")):
        refused = client.get(path)
        assert refused.status_code == 403 and refused.json()["required_scope"] == scope
    assert client_for(alice, "usage.read").get("/usage").status_code == 200
    assert client_for(alice, "billing.read").get("/billing").status_code == 200


def test_billing_shows_the_plan_included_used_and_the_next_invoice(
    alice: Tenant, alice_client: Any, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(
        alice,
        included_tokens=3,
        included_tool_calls=0,
        overage_allowed=True,
        monthly_price_cents=2000,
        unit_prices={"input_tokens": "1000000", "output_tokens": "1000000", "tool_calls": "500000"},
    )
    work(alice_client)
    billing = alice_client.get("/billing").json()
    used = billing["used"]
    assert billing["status"] == "none" and billing["overage_allowed"] is True
    assert billing["included"]["tokens"] == 3 and billing["included"]["tool_calls"] == 0
    assert used["tokens"] == used["input_tokens"] + used["output_tokens"] > 3
    assert used["tool_calls"] == 1 and used["api_keys"] == 1
    start = datetime.fromisoformat(billing["period_start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(billing["period_end"].replace("Z", "+00:00"))
    assert start <= datetime.now(UTC) < end and end - start <= timedelta(days=31)
    invoice = billing["next_invoice"]
    over_tokens = used["tokens"] - 3
    assert invoice["lines"][0] == {"item": "Test plan", "quantity": 1, "amount": "20.000000"}
    assert (
        sum(line["quantity"] for line in invoice["lines"][1:] if line["item"].endswith("tokens"))
        == over_tokens
    )
    assert float(invoice["amount"]) == pytest.approx(20 + over_tokens + 0.5)


def test_a_new_team_is_on_the_free_plan(alice_client: Any) -> None:
    billing = alice_client.get("/billing").json()
    assert billing["plan"] == "free" and billing["next_invoice"]["amount"] == "0.000000"
