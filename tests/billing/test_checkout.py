"""POST /billing/checkout and POST /billing/portal through the official SDK, against the fake Stripe
server (Checkout and Portal sessions) in front of localstripe (customers, prices, subscriptions)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe
from django.core.management import call_command
from django.test.utils import override_settings

from apps.billing.accounts import account_for
from apps.billing.models import BillingAccount, Plan
from apps.tenants.models import Tenant
from tests.billing.fake_stripe import FakeStripe
from tests.billing.plans import seed_plans
from tests.conftest import SlopClient, free_port

pytestmark = pytest.mark.django_db

SUCCESS = "https://app.example.com/billing/done"
RETURN = "https://app.example.com/settings/billing"
WEBHOOK_SECRET = "whsec_billing_checkout"


@pytest.fixture
def billing(fake_stripe: FakeStripe) -> FakeStripe:
    """Stripe configured (the fake), the plans seeded and linked to Stripe prices."""
    seed_plans()
    Plan.objects.filter(slug__in=["pro", "team"]).update(stripe_price_id="")
    call_command("billing_sync_plans", stdout=open("/dev/null", "w"))  # noqa: SIM115
    with override_settings(
        SLOP_BILLING_SUCCESS_URL=SUCCESS,
        SLOP_BILLING_CANCEL_URL=SUCCESS,
        SLOP_BILLING_PORTAL_RETURN_URL=RETURN,
        STRIPE_BILLING_WEBHOOK_SECRET=WEBHOOK_SECRET,
    ):
        yield fake_stripe


def _checkout(client: SlopClient, plan: Any = "pro", **extra: Any) -> Any:
    return client.post("/billing/checkout", {"plan": plan, **extra}, format="json")


def test_checkout_starts_a_subscription_session_for_the_plan(
    billing: FakeStripe, alice: Tenant, alice_client: SlopClient, billing_stripe_client: stripe.StripeClient
) -> None:
    response = _checkout(alice_client, "pro")

    assert response.status_code == 200, response.content
    url = response.json()["url"]
    assert url.startswith("https://checkout.stripe.com/")
    [session] = billing.checkout_sessions.values()
    assert session["url"] == url and session["mode"] == "subscription"
    pro = Plan.objects.get(slug="pro")
    # The flat monthly price (quantity 1), then each metered price (no quantity: the meter says).
    assert session["_line_items"][0] == {"price": pro.stripe_price_id, "quantity": "1"}
    metered = sorted(pro.stripe_metered_prices.values())
    assert len(metered) == 4 and sorted(item["price"] for item in session["_line_items"][1:]) == metered
    assert all("quantity" not in item for item in session["_line_items"][1:])
    assert session["success_url"] == SUCCESS and session["cancel_url"] == SUCCESS
    assert session["client_reference_id"] == str(alice.pk)
    assert session["metadata"] == {"slop_tenant": str(alice.pk), "slop_plan": "pro"}
    # The team's Stripe customer was made for this, with the tenant in its metadata.
    account = BillingAccount.objects.for_tenant(alice).get()
    assert session["customer"] == account.stripe_customer_id
    customer = billing_stripe_client.v1.customers.retrieve(account.stripe_customer_id).to_dict()
    assert customer["metadata"]["slop_tenant"] == str(alice.pk)
    # Nothing changes until Stripe's webhook says the subscription is paid.
    assert account.plan.slug == "free" and account.status == "none"


def test_a_team_has_one_customer_however_often_it_checks_out(
    billing: FakeStripe, alice: Tenant, alice_client: SlopClient
) -> None:
    for plan in ("pro", "team", "pro"):
        assert _checkout(alice_client, plan).status_code == 200
    assert alice_client.post("/billing/portal").status_code == 200
    customers = {session["customer"] for session in billing.checkout_sessions.values()}
    customers |= {session["customer"] for session in billing.portal_sessions.values()}
    assert customers == {BillingAccount.objects.for_tenant(alice).get().stripe_customer_id}


def test_each_team_checks_out_as_its_own_customer(
    billing: FakeStripe, alice: Tenant, charlie: Tenant, client_for: Callable[..., SlopClient]
) -> None:
    assert _checkout(client_for(alice)).status_code == 200
    assert _checkout(client_for(charlie), "team").status_code == 200
    by_tenant = {s["client_reference_id"]: s["customer"] for s in billing.checkout_sessions.values()}
    assert by_tenant == {
        str(alice.pk): BillingAccount.objects.for_tenant(alice).get().stripe_customer_id,
        str(charlie.pk): BillingAccount.objects.for_tenant(charlie).get().stripe_customer_id,
    }
    assert by_tenant[str(alice.pk)] != by_tenant[str(charlie.pk)]


def _signed(payload: bytes) -> str:
    at = int(time.time())
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def test_a_completed_checkout_puts_the_team_on_its_plan_when_stripe_says_so(
    billing: FakeStripe, alice: Tenant, alice_client: SlopClient, client: Any
) -> None:
    assert _checkout(alice_client, "team").status_code == 200
    [session_id] = billing.checkout_sessions
    # The customer pays on Stripe's page: the fake makes the subscription in localstripe.
    completed = httpx.post(f"{billing.url}/_fake/checkout/sessions/{session_id}/complete", timeout=10)
    assert completed.status_code == 200, completed.text
    session = completed.json()
    assert session["status"] == "complete" and session["subscription"].startswith("sub_")

    # Stripe's checkout.session.completed, with the session exactly as Stripe answers it.
    event = {"id": "evt_checkout_done", "object": "event", "type": "checkout.session.completed"}
    event |= {"created": int(time.time()), "data": {"object": session}}
    payload = json.dumps(event).encode()
    response = client.post(
        "/billing/webhook", payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=_signed(payload)
    )
    assert response.status_code == 200 and response.json()["outcome"] == "applied: team active"
    account = BillingAccount.objects.for_tenant(alice).get()
    assert account.stripe_subscription_id == session["subscription"]
    # The subscription Stripe made carries the flat price and every metered one.
    team = Plan.objects.get(slug="team")
    subscription = (
        stripe.StripeClient(
            billing.secret_keys.copy().pop(), base_addresses={"api": billing.url}, max_network_retries=0
        )
        .v1.subscriptions.retrieve(session["subscription"])
        .to_dict()
    )
    items = {item["price"]["id"] for item in subscription["items"]["data"]}
    assert items == {team.stripe_price_id, *team.stripe_metered_prices.values()}
    assert account.plan.slug == "team"  # found by the flat price among the items

    # Subscribed: a second checkout is refused, the portal is the way to change plans.
    again = _checkout(alice_client, "pro")
    assert again.status_code == 409 and "portal" in again.json()["error"]


def test_the_portal_session_returns_to_the_configured_page(
    billing: FakeStripe, alice: Tenant, alice_client: SlopClient
) -> None:
    response = alice_client.post("/billing/portal")
    assert response.status_code == 200, response.content
    [session] = billing.portal_sessions.values()
    assert response.json() == {"url": session["url"]}
    assert session["return_url"] == RETURN
    assert session["customer"] == BillingAccount.objects.for_tenant(alice).get().stripe_customer_id
    assert alice_client.post("/billing/portal", {}, format="json").status_code == 200


# --- Refusals ---------------------------------------------------------------------------------


def test_an_unknown_or_private_plan_is_400_naming_the_plans(
    billing: FakeStripe, alice_client: SlopClient
) -> None:
    response = _checkout(alice_client, "platinum")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unknown_plan" and body["plans"] == ["pro", "team"]
    assert "pro, team" in body["error"]
    Plan.objects.filter(slug="team").update(is_public=False)
    assert _checkout(alice_client, "team").json()["code"] == "unknown_plan"
    assert not billing.checkout_sessions


def test_the_free_plan_is_400(billing: FakeStripe, alice_client: SlopClient) -> None:
    response = _checkout(alice_client, "free")
    assert response.status_code == 400 and "needs no checkout" in response.json()["error"]
    assert not billing.checkout_sessions


@pytest.mark.parametrize(
    "body",
    [{}, {"plan": 5}, {"plan": ""}, {"plan": "x" * 41}, ["pro"], "pro"],
    ids=["missing", "number", "empty", "long", "list", "string"],
)
def test_a_malformed_body_is_400(billing: FakeStripe, alice_client: SlopClient, body: Any) -> None:
    response = alice_client.post("/billing/checkout", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("validation_error", "invalid_request")


def test_a_portal_body_that_is_not_an_object_is_400(billing: FakeStripe, alice_client: SlopClient) -> None:
    assert alice_client.post("/billing/portal", ["x"], format="json").status_code == 400
    assert not billing.portal_sessions


def test_without_stripe_both_answer_503_naming_the_setting(alice: Tenant, alice_client: SlopClient) -> None:
    seed_plans()
    Plan.objects.filter(slug="pro").update(stripe_price_id="price_x")
    with override_settings(STRIPE_SECRET_KEY=None, SLOP_BILLING_SUCCESS_URL=SUCCESS):
        for response in (_checkout(alice_client), alice_client.post("/billing/portal")):
            assert response.status_code == 503
            body = response.json()
            assert body["code"] == "billing_not_configured" and body["setting"] == "STRIPE_SECRET_KEY"
            assert "STRIPE_SECRET_KEY" in body["error"]
    assert not BillingAccount.objects.for_tenant(alice).exclude(stripe_customer_id="").exists()


def test_without_return_urls_it_is_503_naming_them(billing: FakeStripe, alice_client: SlopClient) -> None:
    with override_settings(SLOP_BILLING_SUCCESS_URL=None):
        response = _checkout(alice_client)
        assert response.status_code == 503 and response.json()["setting"] == "SLOP_BILLING_SUCCESS_URL"
    with override_settings(SLOP_BILLING_PORTAL_RETURN_URL=None):
        response = alice_client.post("/billing/portal")
        assert response.status_code == 503 and response.json()["setting"] == "SLOP_BILLING_PORTAL_RETURN_URL"


def test_a_plan_not_linked_to_stripe_yet_is_503_saying_how(
    billing: FakeStripe, alice_client: SlopClient
) -> None:
    Plan.objects.filter(slug="pro").update(stripe_price_id="")
    response = _checkout(alice_client)
    assert response.status_code == 503 and "billing_sync_plans" in response.json()["error"]


def test_stripe_unreachable_is_502(billing: FakeStripe, alice_client: SlopClient) -> None:
    with override_settings(STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}"):
        response = _checkout(alice_client)
    assert response.status_code == 502 and response.json()["code"] == "stripe_unavailable"


@pytest.mark.parametrize("path", ["/billing/checkout", "/billing/portal"])
def test_a_key_without_billing_write_is_403(
    billing: FakeStripe, alice: Tenant, client_for: Callable[..., SlopClient], path: str
) -> None:
    for client in (
        client_for(alice, "chat.*,tools.*,memory.*,resources.*,pay.*,usage.*"),
        client_for(alice, "billing.read"),
        client_for(alice, "*", scope_header="billing.read"),  # narrowed by X-SLOP-Scope
    ):
        response = client.post(path, {"plan": "pro"}, format="json")
        assert response.status_code == 403, response.content
        assert response.json()["required_scope"] == "billing.write"
    assert client_for(alice, "billing.*").post(path, {"plan": "pro"}, format="json").status_code == 200
    assert account_for(alice).plan.slug == "free"  # only a webhook changes the plan
