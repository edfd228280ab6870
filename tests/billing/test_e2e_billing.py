"""The real server (Daphne) subscribing a team through Checkout, and Stripe's own webhooks
(delivered by localstripe, behind the fake Stripe server) moving its plan: subscribed → pro;
cancelled in Stripe → free."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import stripe
from django.core.management import call_command
from django.test.utils import override_settings

from apps.billing.models import BillingAccount, BillingStripeEvent, Plan
from apps.tenants.models import Tenant
from tests.billing.fake_stripe import FakeStripe, start_fake_stripe, stop_fake_stripe
from tests.billing.plans import seed_plans
from tests.conftest import free_port, wait_for_port
from tests.e2e.conftest import LiveServer, start_server, stop_server
from tests.pay.conftest import _RUNNER, TEST_SECRET_KEY, register_webhook, stripe_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WEBHOOK_SECRET = "whsec_billing_e2e"


@pytest.fixture(scope="module")
def own_fake_stripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStripe]:
    """A localstripe of this module alone (its webhooks reach only this module's server), with the
    fake Stripe server in front of it."""
    port = free_port()
    log = (tmp_path_factory.mktemp("localstripe-billing") / "localstripe.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, process=process)
        fake = start_fake_stripe(f"http://127.0.0.1:{port}", {TEST_SECRET_KEY})
        try:
            yield fake
        finally:
            stop_fake_stripe(fake)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def billing_server(
    django_db_setup: None,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
    own_fake_stripe: FakeStripe,
) -> Iterator[LiveServer]:
    env = {
        "STRIPE_SECRET_KEY": TEST_SECRET_KEY,
        "STRIPE_API_BASE": own_fake_stripe.url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "STRIPE_BILLING_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SLOP_BILLING_SUCCESS_URL": "https://app.example.com/billing/done",
    }
    with django_db_blocker.unblock():
        server = start_server(env, tmp_path_factory.mktemp("billing-server"))
    register_webhook(
        own_fake_stripe.localstripe_url, "billing", f"{server.url}/billing/webhook", WEBHOOK_SECRET
    )
    yield server
    stop_server(server)


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def _state(tenant: Tenant) -> tuple[str, str]:
    account = BillingAccount.objects.for_tenant(tenant).select_related("plan").first()
    return (account.plan.slug, account.status) if account else ("free", "none")


def test_subscribe_through_checkout_then_cancel_in_stripe(
    billing_server: LiveServer, own_fake_stripe: FakeStripe, alice: Tenant, make_key: Callable[..., str]
) -> None:
    seed_plans()
    Plan.objects.filter(slug__in=["pro", "team"]).update(stripe_price_id="")
    with override_settings(**stripe_env(own_fake_stripe.url)):
        call_command("billing_sync_plans", stdout=open("/dev/null", "w"))  # noqa: SIM115
    headers = {"Authorization": f"Bearer {make_key(alice)}"}

    started = httpx.post(
        f"{billing_server.url}/billing/checkout", json={"plan": "pro"}, headers=headers, timeout=30
    )
    assert started.status_code == 200, started.text
    [session_id] = [
        s["id"] for s in own_fake_stripe.checkout_sessions.values() if s["url"] == started.json()["url"]
    ]

    # The customer pays on Stripe's page; Stripe (localstripe) creates the subscription and tells us.
    completed = httpx.post(f"{own_fake_stripe.url}/_fake/checkout/sessions/{session_id}/complete", timeout=30)
    assert completed.status_code == 200, completed.text
    subscription_id = completed.json()["subscription"]
    assert wait_until(lambda: _state(alice) == ("pro", "active")), (
        _state(alice),
        billing_server.log()[-3000:],
    )
    account = BillingAccount.objects.for_tenant(alice).get()
    assert account.stripe_subscription_id == subscription_id
    assert account.period_end is not None and account.period_end > account.period_start

    # Cancelled in Stripe (the Customer Portal, or the dashboard): the team is on free after the webhook.
    client = stripe.StripeClient(TEST_SECRET_KEY, base_addresses={"api": own_fake_stripe.url})
    client.v1.subscriptions.cancel(subscription_id)
    assert wait_until(lambda: _state(alice) == ("free", "canceled")), billing_server.log()[-3000:]
    deleted = BillingStripeEvent.objects.get(type="customer.subscription.deleted")
    assert deleted.tenant_id == alice.pk and deleted.outcome == "applied: free canceled"
    # Every delivery was recorded once.
    ids = list(BillingStripeEvent.objects.values_list("event_id", flat=True))
    assert len(ids) == len(set(ids))
