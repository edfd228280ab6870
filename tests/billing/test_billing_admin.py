"""The billing admin: an operator overrides a team's plan only with a reason; Stripe's state is
read-only; a new account starts on free."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apps.billing.accounts import account_for
from apps.billing.models import BillingAccount
from apps.tenants.models import Tenant
from tests.billing.plans import seed_plans

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("operator", "op@example.com", "pw-for-tests-only"))
    return client


def test_an_override_needs_a_reason(operator: Client, alice: Tenant) -> None:
    plans = seed_plans()
    account = account_for(alice)
    url = f"/admin/billing/billingaccount/{account.pk}/change/"

    refused = operator.post(url, {"override_plan": plans["team"].pk, "override_reason": "  "})
    assert refused.status_code == 200
    assert "Say why" in str(refused.context["adminform"].form.errors)
    assert BillingAccount.objects.for_tenant(alice).get().override_plan is None

    saved = operator.post(url, {"override_plan": plans["team"].pk, "override_reason": "design partner"})
    assert saved.status_code == 302
    account = BillingAccount.objects.for_tenant(alice).get()
    assert account.effective_plan.slug == "team" and account.plan.slug == "free"
    assert account.override_reason == "design partner"


def test_stripes_state_is_not_editable(operator: Client, alice: Tenant) -> None:
    seed_plans()
    account = account_for(alice)
    page = operator.get(f"/admin/billing/billingaccount/{account.pk}/change/")
    assert set(page.context["adminform"].form.fields) == {"override_plan", "override_reason"}
    operator.post(
        f"/admin/billing/billingaccount/{account.pk}/change/",
        {"override_plan": "", "override_reason": "", "status": "active", "stripe_customer_id": "cus_x"},
    )
    account = BillingAccount.objects.for_tenant(alice).get()
    assert account.status == "none" and account.stripe_customer_id == ""


def test_an_account_added_by_hand_starts_on_free(operator: Client, alice: Tenant) -> None:
    plans = seed_plans()
    response = operator.post(
        "/admin/billing/billingaccount/add/",
        {"tenant": alice.pk, "override_plan": plans["pro"].pk, "override_reason": "trial month"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    account = BillingAccount.objects.for_tenant(alice).get()
    assert account.plan.slug == "free" and account.effective_plan.slug == "pro"
