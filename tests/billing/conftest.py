"""Stripe for billing tests: localstripe behind the fake server of tests/billing/fake_stripe.py
(meters, meter events, Checkout and Portal sessions), the official SDK pointed at the fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe
from django.test.utils import override_settings

from apps.billing.accounts import account_for, clear_limits_cache
from apps.billing.models import Plan
from apps.tenants.models import Tenant
from tests.billing.fake_stripe import FakeStripe, start_fake_stripe, stop_fake_stripe
from tests.pay.conftest import TEST_SECRET_KEY, localstripe, stripe_env  # noqa: F401 (fixture)


@pytest.fixture(scope="session")
def fake_stripe_server(localstripe: str) -> Iterator[FakeStripe]:  # noqa: F811
    fake = start_fake_stripe(localstripe, {TEST_SECRET_KEY})
    try:
        yield fake
    finally:
        stop_fake_stripe(fake)


@pytest.fixture
def fake_stripe(fake_stripe_server: FakeStripe) -> Iterator[FakeStripe]:
    """The platform's Stripe settings pointed at the fake server (and localstripe behind it); the
    fake's own state (meters, events, sessions) starts empty for each test."""
    fake_stripe_server.reset()
    with override_settings(**stripe_env(fake_stripe_server.url)):
        yield fake_stripe_server
    fake_stripe_server.reset()


@pytest.fixture
def billing_stripe_client(fake_stripe: FakeStripe) -> stripe.StripeClient:
    """The test's own view of Stripe, through the same fake server."""
    return stripe.StripeClient(
        TEST_SECRET_KEY, base_addresses={"api": fake_stripe.url}, max_network_retries=0
    )


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    """Plans change inside tests: no process-cached limits from a test before."""
    clear_limits_cache()
    yield
    clear_limits_cache()


@pytest.fixture
def put_on_plan(db: None) -> Callable[..., Plan]:
    """Puts a tenant on a plan of its own with these limits (a new plan, so the seeded ones stay)."""

    def put(tenant: Tenant, **fields: Any) -> Plan:
        plan = Plan.objects.create(slug=f"test-{tenant.slug}-{Plan.objects.count()}", name="Test", **fields)
        account = account_for(tenant)
        account.plan = plan
        account.save(update_fields=["plan", "updated_at"])
        clear_limits_cache()
        return plan

    return put
