"""POST /billing/webhook: the signature checked, each event applied once, in any order; a failed
payment's grace period, then free; a cancelled subscription, then free."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from apps.billing.accounts import account_for
from apps.billing.models import BillingAccount, BillingStripeEvent, Plan
from apps.billing.subscriptions import billing_end_expired_grace_periods
from apps.billing.tasks import end_expired_grace_periods
from apps.tenants.models import Tenant
from tests.billing.plans import seed_plans

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("billing_webhook_secret")]

SECRET = "whsec_billing_test"
PRO_PRICE = "price_pro_monthly_test"
TEAM_PRICE = "price_team_monthly_test"


@pytest.fixture
def billing_webhook_secret():
    with override_settings(STRIPE_BILLING_WEBHOOK_SECRET=SECRET, SLOP_BILLING_GRACE_DAYS=7.0):
        yield


@pytest.fixture(autouse=True)
def plans() -> dict[str, Plan]:
    found = seed_plans()
    Plan.objects.filter(slug="pro").update(stripe_price_id=PRO_PRICE)
    Plan.objects.filter(slug="team").update(stripe_price_id=TEAM_PRICE)
    return found


@pytest.fixture
def customer(alice: Tenant) -> str:
    account = account_for(alice)
    account.stripe_customer_id = "cus_alice"
    account.save()
    return "cus_alice"


def signed(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


_ids = itertools.count()


def event(event_type: str, obj: dict[str, Any], created: int, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{event_type}_{created}_{next(_ids)}",
        "object": "event",
        "type": event_type,
        "created": created,
        "data": {"object": obj},
    }


def subscription(status: str, *, price: str = PRO_PRICE, sub: str = "sub_1", customer: str = "cus_alice"):
    return {
        "id": sub,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "current_period_start": 1_800_000_000,
        "current_period_end": 1_802_592_000,
        "items": {"object": "list", "data": [{"id": "si_1", "price": {"id": price}, "quantity": 1}]},
        "metadata": {},
    }


def invoice(*, sub: str = "sub_1", price: str = PRO_PRICE, customer: str = "cus_alice") -> dict[str, Any]:
    return {
        "id": "in_1",
        "object": "invoice",
        "customer": customer,
        "subscription": sub,
        "lines": {
            "data": [{"price": {"id": price}, "period": {"start": 1_800_000_000, "end": 1_802_592_000}}]
        },
    }


def deliver(client: Client, body: dict[str, Any], *, secret: str = SECRET, at: int | None = None):
    payload = json.dumps(body).encode()
    return client.post(
        "/billing/webhook",
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signed(payload, secret, at),
    )


def state(tenant: Tenant) -> tuple[str, str]:
    account = BillingAccount.objects.for_tenant(tenant).select_related("plan").get()
    return account.plan.slug, account.status


# --- The signature ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "age"), [("whsec_wrong", 0), (SECRET, 3600), (SECRET, -3600)], ids=["bad", "old", "future"]
)
def test_a_bad_signature_is_400_and_changes_nothing(client, alice, customer, secret, age):
    body = event("customer.subscription.created", subscription("active"), 1000)
    response = deliver(client, body, secret=secret, at=int(time.time()) - age)
    assert response.status_code == 400 and response.json()["code"] == "invalid_signature"
    assert not BillingStripeEvent.objects.exists()
    assert state(alice) == ("free", "none")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"{}", {}),
        (b"not json", {"HTTP_STRIPE_SIGNATURE": signed(b"not json")}),
        (b'{"object": "event"}', {"HTTP_STRIPE_SIGNATURE": signed(b'{"object": "event"}')}),
        (b"{}", {"HTTP_STRIPE_SIGNATURE": "garbage"}),
    ],
    ids=["no-signature", "not-json", "no-id", "garbled-signature"],
)
def test_webhook_bad_input_is_400(client, body, headers):
    response = client.post("/billing/webhook", body, content_type="application/json", **headers)
    assert response.status_code == 400, response.content
    assert not BillingStripeEvent.objects.exists()


def test_without_the_endpoint_secret_it_is_503_naming_the_setting(client):
    with override_settings(STRIPE_BILLING_WEBHOOK_SECRET=None):
        response = client.post(
            "/billing/webhook", b"{}", content_type="application/json", HTTP_STRIPE_SIGNATURE="t=1,v1=x"
        )
    assert response.status_code == 503
    assert response.json()["code"] == "billing_not_configured"
    assert "STRIPE_BILLING_WEBHOOK_SECRET" in response.json()["error"]


def test_the_pay_endpoints_secret_does_not_open_the_billing_endpoint(client, alice, customer):
    with override_settings(STRIPE_WEBHOOK_SECRET="whsec_pay"):
        body = event("customer.subscription.created", subscription("active"), 1000)
        assert deliver(client, body, secret="whsec_pay").status_code == 400
    assert state(alice) == ("free", "none")


# --- Each event once ----------------------------------------------------------------------------

EVERY_EVENT = [
    ("checkout.session.completed", "pro", "active"),
    ("customer.subscription.created", "pro", "active"),
    ("customer.subscription.updated", "team", "active"),
    ("customer.subscription.deleted", "free", "canceled"),
    ("invoice.paid", "pro", "active"),
    ("invoice.payment_failed", "free", "past_due"),
]


def _object_for(event_type: str, tenant: Tenant) -> dict[str, Any]:
    if event_type == "checkout.session.completed":
        return {
            "id": "cs_1",
            "object": "checkout.session",
            "mode": "subscription",
            "customer": "cus_alice",
            "subscription": "sub_1",
            "client_reference_id": str(tenant.pk),
            "payment_status": "paid",
            "metadata": {"slop_tenant": str(tenant.pk), "slop_plan": "pro"},
        }
    if event_type.startswith("invoice."):
        return invoice()
    status = "canceled" if event_type.endswith("deleted") else "active"
    return subscription(status, price=TEAM_PRICE if event_type.endswith("updated") else PRO_PRICE)


@pytest.mark.parametrize(("event_type", "plan", "status"), EVERY_EVENT, ids=[e[0] for e in EVERY_EVENT])
def test_each_event_delivered_five_times_is_applied_once(client, alice, customer, event_type, plan, status):
    body = event(event_type, _object_for(event_type, alice), 1000)

    outcomes = [deliver(client, body) for _ in range(5)]

    assert [r.status_code for r in outcomes] == [200] * 5
    assert outcomes[0].json()["outcome"] == f"applied: {plan} {status}", outcomes[0].json()
    assert {r.json()["outcome"] for r in outcomes[1:]} == {"duplicate"}
    assert BillingStripeEvent.objects.filter(event_id=body["id"]).count() == 1
    assert BillingStripeEvent.objects.get(event_id=body["id"]).tenant_id == alice.pk
    assert state(alice) == (plan, status)


def test_a_payment_failure_delivered_five_times_starts_one_grace_period(client, alice, customer):
    deliver(client, event("customer.subscription.created", subscription("active"), 1000))
    failed = event("invoice.payment_failed", invoice(), 2000)
    for _ in range(5):
        deliver(client, failed)
    account = BillingAccount.objects.for_tenant(alice).get()
    assert account.status == "past_due" and account.plan.slug == "pro"  # kept during the grace period
    assert account.grace_until is not None
    assert abs((account.grace_until - account.stripe_state_at) - timedelta(days=7)) < timedelta(seconds=1)


@pytest.mark.django_db(transaction=True)
def test_five_simultaneous_deliveries_apply_once(alice):
    seed_plans()
    Plan.objects.filter(slug="pro").update(stripe_price_id=PRO_PRICE)
    account = account_for(alice)
    account.stripe_customer_id = "cus_alice"
    account.save()
    body = event("customer.subscription.created", subscription("active"), 1000, event_id="evt_race")
    barrier = threading.Barrier(5)
    outcomes: list[str] = []

    def send() -> None:
        try:
            barrier.wait()
            outcomes.append(deliver(Client(), body).json()["outcome"])
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["applied: pro active"] + ["duplicate"] * 4
    assert BillingStripeEvent.objects.filter(event_id="evt_race").count() == 1


# --- In any order -------------------------------------------------------------------------------


def _lifecycle(tenant: Tenant) -> list[dict[str, Any]]:
    """Subscribe to pro (t=100), upgrade to team (t=200), a failed payment (t=300), cancelled (t=400)."""
    checkout = _object_for("checkout.session.completed", tenant)
    return [
        event("checkout.session.completed", checkout, 100),
        event("customer.subscription.created", subscription("active"), 100),
        event("invoice.paid", invoice(), 100),
        event("customer.subscription.updated", subscription("active", price=TEAM_PRICE), 200),
        event("invoice.payment_failed", invoice(price=TEAM_PRICE), 300),
        event("customer.subscription.updated", subscription("past_due", price=TEAM_PRICE), 300),
        event("customer.subscription.deleted", subscription("canceled", price=TEAM_PRICE), 400),
    ]


@pytest.mark.parametrize("order", ["forward", "reversed", "shuffled-1", "shuffled-2", "shuffled-3"])
def test_out_of_order_events_end_in_the_newest_state(client, alice, customer, order):
    events = _lifecycle(alice)
    if order == "reversed":
        events.reverse()
    elif order.startswith("shuffled"):
        import random

        random.Random(order).shuffle(events)
    for body in events:
        assert deliver(client, body).status_code == 200
    assert state(alice) == ("free", "canceled")
    account = BillingAccount.objects.for_tenant(alice).get()
    assert account.stripe_subscription_id == "sub_1" and account.grace_until is None
    assert int(account.stripe_state_at.timestamp()) == 400


def test_without_the_cancellation_the_newest_plan_wins_whatever_the_order(client, alice, customer):
    events = _lifecycle(alice)[:4]  # pro, then team
    for body in reversed(events):
        deliver(client, body)
    assert state(alice) == ("team", "active")


def test_a_late_update_never_revives_a_cancelled_subscription(client, alice, customer):
    deliver(client, event("customer.subscription.deleted", subscription("canceled"), 500))
    outcome = deliver(client, event("customer.subscription.updated", subscription("active"), 400)).json()
    assert outcome["outcome"] == "kept: older than the state applied"
    assert state(alice) == ("free", "canceled")


def test_events_of_the_same_second_the_more_final_wins(client, alice, customer):
    deliver(client, event("customer.subscription.deleted", subscription("canceled"), 500))
    deliver(client, event("customer.subscription.updated", subscription("active"), 500))
    assert state(alice) == ("free", "canceled")


def test_the_end_of_an_old_subscription_does_not_end_the_new_one(client, alice, customer):
    deliver(client, event("customer.subscription.created", subscription("active", sub="sub_old"), 100))
    deliver(client, event("customer.subscription.deleted", subscription("canceled", sub="sub_old"), 200))
    deliver(
        client,
        event("customer.subscription.created", subscription("active", sub="sub_new", price=TEAM_PRICE), 300),
    )
    late = deliver(
        client, event("customer.subscription.deleted", subscription("canceled", sub="sub_old"), 350)
    )
    assert late.json()["outcome"].startswith("kept: about a subscription")
    assert state(alice) == ("team", "active")
    assert BillingAccount.objects.for_tenant(alice).get().stripe_subscription_id == "sub_new"


def test_an_event_of_a_customer_we_do_not_know_is_acknowledged_and_ignored(client, alice, customer):
    body = event("customer.subscription.created", subscription("active", customer="cus_stranger"), 100)
    response = deliver(client, body)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored: no team of ours"
    assert state(alice) == ("free", "none")


def test_another_teams_metadata_cannot_move_a_team_that_has_its_own_customer(
    client, alice, charlie, customer
):
    charlie_account = account_for(charlie)
    charlie_account.stripe_customer_id = "cus_charlie"
    charlie_account.save()
    # A subscription of Charlie's customer that claims Alice's tenant id in its metadata.
    sub = subscription("active", customer="cus_charlie", sub="sub_charlie")
    sub["metadata"] = {"slop_tenant": str(alice.pk)}
    deliver(client, event("customer.subscription.created", sub, 100))
    assert state(alice) == ("free", "none")
    assert state(charlie) == ("pro", "active")


def test_unused_event_types_are_acknowledged(client):
    response = deliver(client, event("customer.created", {"id": "cus_x", "object": "customer"}, 100))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored: event type not used"


def test_an_incomplete_subscription_grants_nothing_until_paid(client, alice, customer):
    deliver(client, event("customer.subscription.created", subscription("incomplete"), 100))
    assert state(alice) == ("free", "none")
    deliver(client, event("invoice.paid", invoice(), 101))
    assert state(alice) == ("pro", "active")


# --- Grace period, cancellation -------------------------------------------------------------------


def test_a_failed_payment_keeps_the_plan_for_the_grace_period_then_free(client, alice, customer):
    now = int(time.time())
    deliver(client, event("customer.subscription.created", subscription("active"), now - 10))
    deliver(client, event("invoice.payment_failed", invoice(), now - 5))
    assert state(alice) == ("pro", "past_due")

    assert billing_end_expired_grace_periods() == []  # still within the grace period
    assert state(alice) == ("pro", "past_due")

    later = timezone.now() + timedelta(days=7, minutes=1)
    assert billing_end_expired_grace_periods(now=later) == [alice.pk]
    assert state(alice) == ("free", "past_due")
    # The data and the Stripe link stay; a later paid invoice brings the plan back.
    account = BillingAccount.objects.for_tenant(alice).get()
    assert account.stripe_subscription_id == "sub_1" and account.stripe_customer_id == "cus_alice"
    deliver(client, event("invoice.paid", invoice(), now))
    assert state(alice) == ("pro", "active")
    assert BillingAccount.objects.for_tenant(alice).get().grace_until is None


def test_the_beat_task_ends_grace_periods(client, alice, customer):
    deliver(client, event("customer.subscription.created", subscription("active"), 100))
    deliver(client, event("invoice.payment_failed", invoice(), 200))  # its grace period ended in 1970
    assert end_expired_grace_periods.apply().get() == [alice.pk]
    assert state(alice) == ("free", "past_due")


def test_a_paid_invoice_within_the_grace_period_ends_it(client, alice, customer):
    now = int(time.time())
    deliver(client, event("customer.subscription.created", subscription("active"), now - 10))
    deliver(client, event("invoice.payment_failed", invoice(), now - 5))
    deliver(client, event("invoice.paid", invoice(), now))
    assert state(alice) == ("pro", "active")
    assert billing_end_expired_grace_periods(now=timezone.now() + timedelta(days=30)) == []
    assert state(alice) == ("pro", "active")


def test_a_cancelled_subscription_puts_the_team_on_free(client, alice, customer):
    deliver(client, event("customer.subscription.created", subscription("active", price=TEAM_PRICE), 100))
    assert state(alice) == ("team", "active")
    deliver(client, event("customer.subscription.deleted", subscription("canceled", price=TEAM_PRICE), 200))
    assert state(alice) == ("free", "canceled")


def test_an_override_survives_webhooks(client, alice, customer, plans):
    account = account_for(alice)
    account.override_plan = plans["team"]
    account.override_reason = "design partner"
    account.save()
    deliver(client, event("customer.subscription.deleted", subscription("canceled"), 200))
    account = BillingAccount.objects.for_tenant(alice).get()
    assert account.plan.slug == "free" and account.effective_plan.slug == "team"


def test_a_subscription_changes_the_keys_rate_limit_at_once(
    client, alice, customer, client_for, monkeypatch, django_capture_on_commit_callbacks
):
    from django.core.cache import caches

    from apps.billing.plans import plan_rate_limit_forget

    monkeypatch.setattr("apps.tenants.throttling._clock", lambda: 1_800_000_030.0)
    caches["state"].clear()
    plan_rate_limit_forget()
    Plan.objects.filter(slug="pro").update(rate_limit_per_minute=2)
    with override_settings(RATE_LIMIT_PER_MINUTE=100):
        key = client_for(alice)
        assert key.get("/info").status_code == 200  # on free: the platform's limit, now cached
        with django_capture_on_commit_callbacks(execute=True):
            deliver(client, event("customer.subscription.created", subscription("active"), 100))
        assert [key.get("/info").status_code for _ in range(2)] == [200, 429]  # pro's 2 a minute
    caches["state"].clear()


def test_an_invoice_of_another_subscription_never_touches_the_current_one(client, alice, customer):
    deliver(client, event("customer.subscription.created", subscription("active", sub="sub_new"), 100))
    for kind in ("invoice.payment_failed", "invoice.paid"):
        late = deliver(client, event(kind, invoice(sub="sub_old", price=TEAM_PRICE), 200)).json()
        assert late["outcome"] == "kept: about a subscription that is not the team's current one"
    assert state(alice) == ("pro", "active")
    account = BillingAccount.objects.for_tenant(alice).get()
    assert account.stripe_subscription_id == "sub_new" and account.grace_until is None
