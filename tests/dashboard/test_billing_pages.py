"""The billing page: owners only (admins and members 403, other teams 404); the plan, its status and
period, included against used and the next invoice as GET /billing says; "Upgrade" and "Manage
billing" through the billing service to Stripe (the official SDK against the fake Stripe server in
front of localstripe, as tests/billing do), and what the service refuses shown on the page."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from apps.billing.accounts import account_for, clear_limits_cache
from apps.billing.metering import Kind, Usage, meter
from apps.billing.models import BillingAccount, Plan
from apps.billing.selectors import billing_overview
from apps.tenants.models import Tenant
from tests.billing.conftest import fake_stripe, fake_stripe_server  # noqa: F401 (fixtures)
from tests.billing.fake_stripe import FakeStripe
from tests.billing.plans import seed_plans
from tests.pay.conftest import localstripe  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

SUCCESS = "https://console.example.com/console/billing-done"
RETURN = "https://console.example.com/console/billing"


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    clear_limits_cache()
    yield
    clear_limits_cache()


@pytest.fixture
def plans(db: None) -> dict[str, Plan]:
    return seed_plans()


@pytest.fixture
def billing(fake_stripe: FakeStripe, plans: dict[str, Plan]) -> Iterator[FakeStripe]:  # noqa: F811
    """Stripe configured (the fake in front of localstripe), the plans linked to Stripe prices."""
    Plan.objects.filter(slug__in=["pro", "team"]).update(stripe_price_id="")
    call_command("billing_sync_plans", stdout=open("/dev/null", "w"))  # noqa: SIM115
    with override_settings(
        SLOP_BILLING_SUCCESS_URL=SUCCESS,
        SLOP_BILLING_CANCEL_URL=SUCCESS,
        SLOP_BILLING_PORTAL_RETURN_URL=RETURN,
    ):
        yield fake_stripe


def billing_url(tenant: Tenant, action: str = "") -> str:
    return f"/console/t/{tenant.slug}/billing/{action}"


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.mark.parametrize("role", ["admin", "member"])
def test_only_the_owner_opens_billing(
    console_for: Callable[..., Client], alice: Tenant, plans: dict[str, Plan], role: str
) -> None:
    console = console_for(alice, role)
    assert console.get(billing_url(alice)).status_code == 403
    assert console.post(billing_url(alice, "checkout"), {"plan": "pro"}).status_code == 403
    assert console.post(billing_url(alice, "portal")).status_code == 403
    # Nothing was started for them: the team still has no Stripe customer.
    assert account_for(alice).stripe_customer_id == ""
    # And the navigation does not offer it.
    home = console.get(f"/console/t/{alice.slug}/").content.decode()
    assert billing_url(alice) not in home


def test_another_teams_billing_is_a_404(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant, plans: dict[str, Plan]
) -> None:
    console = console_for(alice, "owner")
    for response in (
        console.get(billing_url(charlie)),
        console.post(billing_url(charlie, "checkout"), {"plan": "pro"}),
        console.post(billing_url(charlie, "portal")),
    ):
        assert response.status_code == 404
        assert charlie.name.encode() not in response.content
    assert account_for(charlie).stripe_customer_id == ""


def test_the_owner_sees_plan_period_usage_and_the_next_invoice(
    console_for: Callable[..., Client], alice: Tenant, plans: dict[str, Plan]
) -> None:
    pro = plans["pro"]
    pro.unit_prices = {"input_tokens": "2.00", "output_tokens": "8.00"}  # per million
    pro.save(update_fields=["unit_prices"])
    account = account_for(alice)
    account.plan, account.status = pro, BillingAccount.Status.ACTIVE
    account.stripe_subscription_id = "sub_test_active"
    account.save(update_fields=["plan", "status", "stripe_subscription_id", "updated_at"])
    clear_limits_cache()
    meter(
        usage=Usage(tenant_id=alice.pk),
        kind=Kind.LLM,
        model="echo",
        input_tokens=4_000_000,
        output_tokens=2_000_000,
    )

    response = console_for(alice, "owner").get(billing_url(alice))

    assert response.status_code == 200
    html = response.content.decode()
    overview = billing_overview(tenant=alice)
    assert "Pro plan" in html and "<strong>Subscription:</strong> Active." in html
    assert f'datetime="{overview["period_start"]}"' in html and f'datetime="{overview["period_end"]}"' in html
    assert re.search(r'class="quota over" data-quota="tokens">.*?6,000,000 of 5,000,000', html, re.S)
    assert "the rest is billed at the plan's prices" in html
    invoice = overview["next_invoice"]
    # 29 for the plan, then 1,000,000 tokens past the 5,000,000 included, split 2:1 as used.
    assert [(line["item"], line["quantity"], line["amount"]) for line in invoice["lines"]] == [
        ("Pro plan", 1, "29.000000"),
        ("input_tokens", 666_667, "1.333334"),
        ("output_tokens", 333_333, "2.666664"),
    ]
    assert '<strong id="invoice-total">33.00 USD</strong>' in html
    for item, quantity, amount in (("Pro plan", 1, "29.00"), ("input_tokens", 666667, "1.33")):
        assert f'<td>{item}</td><td class="num">{quantity}</td><td class="num">{amount}</td>' in html
    # The plans, with prices; a live subscription changes plan in the portal, not in a new checkout.
    assert re.search(r'data-plan="team">.*?99.00 USD</strong> a month', html, re.S)
    assert re.search(r'data-plan="pro">\s*<h3>Pro <span class="role">current</span>', html, re.S)
    assert "Upgrade to" not in html and "Change to Team in <em>Manage billing</em>" in html
    assert 'action="/console/t/alice-team/billing/portal"' in html


def test_a_team_on_free_is_offered_the_paid_plans(
    console_for: Callable[..., Client], alice: Tenant, plans: dict[str, Plan]
) -> None:
    html = console_for(alice, "owner").get(billing_url(alice)).content.decode()
    assert "Free plan" in html and "No subscription: the team is on the free plan." in html
    assert "Upgrade to Pro" in html and "Upgrade to Team" in html and "Upgrade to Free" not in html
    assert re.search(r'data-plan="pro">.*?29.00 USD</strong> a month.*?Tokens: 5,000,000', html, re.S)
    assert re.search(r'data-plan="free">.*?Resource storage: 100\.0.MB', html, re.S)
    assert 'name="csrfmiddlewaretoken"' in html


def test_upgrade_starts_a_checkout_session_and_sends_the_browser_to_it(
    console_for: Callable[..., Client], alice: Tenant, billing: FakeStripe
) -> None:
    response = console_for(alice, "owner").post(billing_url(alice, "checkout"), {"plan": "team"})

    assert response.status_code == 303
    [session] = billing.checkout_sessions.values()
    assert response["Location"] == session["url"] and session["url"].startswith(
        "https://checkout.stripe.com/"
    )
    assert session["mode"] == "subscription" and session["metadata"] == {
        "slop_tenant": str(alice.pk),
        "slop_plan": "team",
    }
    assert session["success_url"] == SUCCESS
    account = account_for(alice)
    assert session["customer"] == account.stripe_customer_id != ""
    assert account.plan.slug == "free"  # until Stripe's webhook says it is paid


def test_manage_billing_opens_a_portal_session(
    console_for: Callable[..., Client], alice: Tenant, billing: FakeStripe
) -> None:
    response = console_for(alice, "owner").post(billing_url(alice, "portal"))

    assert response.status_code == 303
    [session] = billing.portal_sessions.values()
    assert response["Location"] == session["url"] and session["url"].startswith("https://billing.stripe.com/")
    assert session["customer"] == account_for(alice).stripe_customer_id and session["return_url"] == RETURN


def test_stripe_not_configured_is_explained_on_the_page(
    console_for: Callable[..., Client], alice: Tenant, plans: dict[str, Plan]
) -> None:
    console = console_for(alice, "owner")
    with override_settings(STRIPE_SECRET_KEY=""):
        for action, what in (
            ("checkout", "Could not start the checkout"),
            ("portal", "Could not open the billing portal"),
        ):
            response = console.post(
                billing_url(alice, action), {"plan": "pro"} if action == "checkout" else {}, follow=True
            )
            assert response.status_code == 200
            assert response.redirect_chain == [(billing_url(alice), 302)]
            [message] = messages_of(response)
            assert (
                message.startswith(what)
                and "Billing is not configured on this server: set STRIPE_SECRET_KEY" in message
            )
            assert "Billing is not configured on this server" in response.content.decode()
    assert account_for(alice).stripe_customer_id == ""


def test_a_plan_without_a_stripe_price_is_explained(
    console_for: Callable[..., Client], alice: Tenant, billing: FakeStripe
) -> None:
    Plan.objects.filter(slug="pro").update(stripe_price_id="")
    response = console_for(alice, "owner").post(billing_url(alice, "checkout"), {"plan": "pro"}, follow=True)
    [message] = messages_of(response)
    assert "The pro plan has no Stripe price yet" in message
    assert not billing.checkout_sessions


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"plan": "platinum"}, "Unknown plan 'platinum'; plans to subscribe to: pro, team"),
        ({"plan": "free"}, "The free plan needs no checkout"),
        ({}, "Choose a plan to upgrade to: nothing was changed."),
        ({"plan": "pro", "coupon": "FREE"}, "Unknown field 'coupon': nothing was changed."),
    ],
)
def test_a_bad_checkout_is_explained_and_changes_nothing(
    console_for: Callable[..., Client],
    alice: Tenant,
    billing: FakeStripe,
    form: dict[str, str],
    expected: str,
) -> None:
    response = console_for(alice, "owner").post(billing_url(alice, "checkout"), form, follow=True)
    assert response.status_code == 200
    [message] = messages_of(response)
    assert expected in message
    assert not billing.checkout_sessions and account_for(alice).stripe_customer_id == ""


def test_a_second_checkout_while_subscribed_is_refused_with_the_reason(
    console_for: Callable[..., Client], alice: Tenant, billing: FakeStripe
) -> None:
    account = account_for(alice)
    BillingAccount.objects.for_tenant(alice).filter(pk=account.pk).update(
        plan=Plan.objects.get(slug="pro"), status="active", stripe_subscription_id="sub_live_1"
    )
    response = console_for(alice, "owner").post(billing_url(alice, "checkout"), {"plan": "team"}, follow=True)
    [message] = messages_of(response)
    assert "This team already has a subscription (pro, active)" in message
    assert not billing.checkout_sessions


def test_past_due_shows_the_grace_period_and_cancelled_says_so(
    console_for: Callable[..., Client], alice: Tenant, plans: dict[str, Plan]
) -> None:
    console = console_for(alice, "owner")
    account = account_for(alice)
    grace = timezone.now() + timedelta(days=5)
    rows = BillingAccount.objects.for_tenant(alice).filter(pk=account.pk)
    rows.update(plan=plans["pro"], status="past_due", stripe_subscription_id="sub_1", grace_until=grace)

    html = console.get(billing_url(alice)).content.decode()
    assert "Payment failed." in html and f"{grace:%Y-%m-%dT%H:%M:%S}" in html
    assert "then the team moves to the free plan unless the invoice is paid" in html
    assert 'class="status status-past_due"' in html

    rows.update(plan=plans["free"], status="canceled", grace_until=None)
    html = console.get(billing_url(alice)).content.decode()
    assert "Cancelled." in html and "The team is back on the free plan" in html and "Upgrade to Pro" in html
