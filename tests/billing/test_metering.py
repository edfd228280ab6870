"""Metering: every billable unit counted once where it happens (with key, end user, agent, model),
the counters equal to the ledger; and what goes to Stripe Billing equals the ledger, once, however
often the report runs or Stripe fails."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import stripe
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.test.utils import override_settings
from django.utils import timezone

from apps.billing.accounts import account_for
from apps.billing.models import MeterReport, UsageCounter, UsageEvent
from apps.billing.reporting import (
    UNITS,
    ensure_meters,
    event_name,
    reconcile,
    report_usage,
)
from apps.billing.tasks import report_usage_to_stripe
from apps.tenants.models import ApiKey, Tenant
from apps.tools.jobs import tool_job_run
from tests.billing.fake_stripe import FakeStripe

pytestmark = pytest.mark.django_db


def say(client: Any, text: str, headers: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    response = client.post(
        "/chat", {"messages": [{"role": "user", "content": text}], **body}, format="json", **(headers or {})
    )
    assert response.status_code == 200, response.content
    return dict(response.json())


def ledger(tenant: Tenant) -> dict[str, int]:
    sums = UsageEvent.objects.for_tenant(tenant).aggregate(**{unit: Sum(unit) for unit in UNITS})
    return {unit: int(sums[unit] or 0) for unit in UNITS}


def run_of_work(client: Any) -> None:
    say(client, "hello there", headers={"HTTP_X_SLOP_USER": "end-user-7"})
    assert client.post("/agents", {"id": "support"}, format="json").status_code in (201, 409)
    say(client, "and again", agent="support")
    say(client, '/tool calculator {"expression": "6*7"}')  # the model calls a tool
    assert client.post("/tools/calculator", {"expression": "1+1"}, format="json").status_code == 200


def test_each_unit_is_metered_once_with_who_used_it(alice: Tenant, alice_client: Any) -> None:
    run_of_work(alice_client)
    events = list(UsageEvent.objects.for_tenant(alice).order_by("id"))
    key = ApiKey.objects.for_tenant(alice).get()
    llm = [e for e in events if e.kind == "llm"]
    tools = [e for e in events if e.kind == "tool"]
    assert len(llm) == 3 and len(tools) == 2
    assert all(e.api_key_id == key.pk and e.model == "echo" for e in llm)
    assert llm[0].end_user == "end-user-7" and llm[1].agent == "support"
    assert {e.tool for e in tools} == {"calculator"} and all(e.tool_calls == 1 for e in tools)
    # The counters the quota check reads agree with the ledger.
    tenant_row = UsageCounter.objects.for_tenant(alice).get(scope="tenant")
    totals = ledger(alice)
    assert (tenant_row.input_tokens, tenant_row.output_tokens, tenant_row.tool_calls) == (
        totals["input_tokens"],
        totals["output_tokens"],
        totals["tool_calls"],
    )
    assert tenant_row.reserved_tokens == 0 and tenant_row.reserved_tool_calls == 0
    user_row = UsageCounter.objects.for_tenant(alice).get(scope="user", subject="end-user-7")
    assert user_row.tokens == llm[0].input_tokens + llm[0].output_tokens
    assert UsageCounter.objects.for_tenant(alice).get(scope="key", subject=str(key.pk)).tool_calls == 2


def test_a_long_jobs_call_and_seconds_are_metered(alice: Tenant, alice_client: Any) -> None:
    answer = alice_client.post("/tools/calculator?async=true", {"expression": "6*7"}, format="json").json()
    # The test's transaction never commits, so the worker's delivery is this call.
    assert tool_job_run(tenant_id=int(alice.pk), job_id=answer["job_id"]) == "succeeded"
    events = UsageEvent.objects.for_tenant(alice)
    assert events.filter(kind="tool", tool_calls=1).count() == 1
    assert events.get(kind="job").job_seconds >= 1


def customer_for(tenant: Tenant, client: stripe.StripeClient) -> str:
    customer = client.v1.customers.create(params={"email": f"{tenant.slug}@example.com"})
    account = account_for(tenant)
    account.stripe_customer_id = customer.id
    account.save(update_fields=["stripe_customer_id"])
    return str(customer.id)


def stripe_totals(fake: FakeStripe, customer: str) -> dict[str, int]:
    return {unit: fake.total(event_name(unit), customer) for unit in UNITS}


def test_meter_events_sent_equal_the_ledger_and_a_retry_sends_nothing_twice(
    alice: Tenant,
    charlie: Tenant,
    alice_client: Any,
    charlie_client: Any,
    fake_stripe: FakeStripe,
    billing_stripe_client: stripe.StripeClient,
) -> None:
    ensure_meters(billing_stripe_client)
    alice_customer = customer_for(alice, billing_stripe_client)
    run_of_work(alice_client)
    say(charlie_client, "charlie is not a Stripe customer")

    first = report_usage()

    assert first.sent == 3 and not first.failed and first.pending == 0  # in, out, tool calls
    assert stripe_totals(fake_stripe, alice_customer) == ledger(alice)
    assert UsageEvent.objects.for_tenant(alice).filter(report=None).count() == 0
    assert UsageEvent.objects.for_tenant(charlie).filter(report=None).count() == 1  # no customer

    # Run again: nothing new to send. Then a lost answer: Stripe counted a batch we think unsent.
    assert report_usage().sent == 0
    report = MeterReport.objects.for_tenant(alice).get()
    MeterReport.objects.for_tenant(alice).filter(pk=report.pk).update(sent_at=None, sent_units=[])
    retried = report_usage()
    assert retried.sent == 0 and retried.already_counted == 3 and retried.pending == 0
    assert len(fake_stripe.rejected_duplicates) == 3
    assert stripe_totals(fake_stripe, alice_customer) == ledger(alice)

    # More work later goes in a batch of its own.
    say(alice_client, "later")
    assert report_usage().sent == 2
    assert stripe_totals(fake_stripe, alice_customer) == ledger(alice)
    start, end = timezone.now() - timedelta(hours=1), timezone.now() + timedelta(minutes=1)
    assert reconcile(billing_stripe_client, start=start, end=end) == []


def test_the_backlog_survives_a_stripe_outage(
    alice: Tenant, alice_client: Any, fake_stripe: FakeStripe, billing_stripe_client: stripe.StripeClient
) -> None:
    ensure_meters(billing_stripe_client)
    customer = customer_for(alice, billing_stripe_client)
    run_of_work(alice_client)
    fake_stripe.outage = 503

    down = report_usage()

    assert down.stopped and down.sent == 0 and down.pending == 1
    assert fake_stripe.meter_events == []
    report = MeterReport.objects.for_tenant(alice).get()
    assert report.sent_at is None and report.attempts == 1 and report.last_error
    say(alice_client, "while Stripe was down")

    fake_stripe.outage = None
    back = report_usage()

    assert back.pending == 0 and not back.stopped
    assert stripe_totals(fake_stripe, customer) == ledger(alice)


def test_reconciliation_names_what_stripe_counted_differently(
    alice: Tenant, alice_client: Any, fake_stripe: FakeStripe, billing_stripe_client: stripe.StripeClient
) -> None:
    ensure_meters(billing_stripe_client)
    customer = customer_for(alice, billing_stripe_client)
    run_of_work(alice_client)
    report_usage()
    lost = next(e for e in fake_stripe.meter_events if e["event_name"] == event_name("tool_calls"))
    fake_stripe.meter_events.remove(lost)

    start, end = timezone.now() - timedelta(hours=1), timezone.now() + timedelta(minutes=1)
    differences = reconcile(billing_stripe_client, start=start, end=end)

    assert [(d.customer, d.unit, d.ours, d.stripes) for d in differences] == [(customer, "tool_calls", 2, 0)]
    out = StringIO()
    with pytest.raises(CommandError, match="1 difference"):
        call_command("billing_report", "--reconcile", stdout=out)
    assert f"mismatch: tenant {alice.pk} ({customer}) tool_calls: sent 2, Stripe counted 0" in out.getvalue()


def test_the_command_and_task_without_stripe_say_so(alice: Tenant, alice_client: Any) -> None:
    say(alice_client, "hello")
    with override_settings(STRIPE_SECRET_KEY=""):
        with pytest.raises(CommandError, match="Stripe is not configured: set STRIPE_SECRET_KEY"):
            call_command("billing_report")
        assert report_usage_to_stripe() == {"status": "not_configured"}
    assert UsageEvent.objects.for_tenant(alice).filter(report=None).count() == 1  # kept for later


def test_the_command_creates_meters_and_reports(
    alice: Tenant, alice_client: Any, fake_stripe: FakeStripe, billing_stripe_client: stripe.StripeClient
) -> None:
    customer = customer_for(alice, billing_stripe_client)
    say(alice_client, "hello")
    out = StringIO()
    call_command("billing_report", "--create-meters", "--reconcile", stdout=out)
    text = out.getvalue()
    assert f"meter {event_name('input_tokens')}: mtr_" in text
    assert "2 meter event(s) sent" in text and "reconciled: no differences" in text
    assert stripe_totals(fake_stripe, customer) == ledger(alice)
    assert report_usage_to_stripe()["status"] == "ok"
