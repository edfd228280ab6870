"""Subscribing and managing: a team's Stripe customer (created lazily), Checkout Sessions for a
plan, Customer Portal sessions, and the end of a grace period. The subscription's state itself is
written only by verified webhooks (apps/billing/webhooks.py) and by an operator's override."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.billing.models import BillingAccount, Plan
from apps.billing.plans import plan_for_checkout, plan_free, plan_is_paid, plan_rate_limit_forget
from apps.billing.stripe_api import as_dict, call, not_configured, require_setting, stripe_client
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

LIVE_STATUSES = {BillingAccount.Status.ACTIVE, BillingAccount.Status.TRIALING, BillingAccount.Status.PAST_DUE}


def billing_account_for(tenant: Tenant, *, for_update: bool = False) -> BillingAccount:
    """The team's billing account, made on first use on the free plan. (billing-meter's
    apps/billing/accounts.py `account_for` does the same; this one can also lock the row.)"""
    rows = BillingAccount.objects.for_tenant(tenant)
    if for_update:
        rows = rows.select_for_update()
    account = rows.select_related("plan", "override_plan").first()
    if account is not None:
        return account
    BillingAccount.objects.get_or_create(tenant=tenant, defaults={"plan": plan_free()})
    return rows.select_related("plan", "override_plan").get()


def billing_customer_ensure(*, tenant: Tenant) -> str:
    """The team's Stripe Customer id, created at Stripe the first time (tenant id in metadata).

    The account row is locked while Stripe creates it, and the create carries an idempotency key
    per tenant, so two simultaneous checkouts make one customer."""
    client = stripe_client()
    with transaction.atomic():
        account = billing_account_for(tenant, for_update=True)
        if account.stripe_customer_id:
            return account.stripe_customer_id
        customer = call(
            lambda: client.v1.customers.create(
                params={
                    "name": tenant.name,
                    "metadata": {"slop_tenant": str(tenant.pk), "slop_tenant_slug": tenant.slug},
                },
                options={"idempotency_key": f"slop-billing-customer-{tenant.pk}"},
            )
        )
        account.stripe_customer_id = str(customer.id)
        account.save(update_fields=["stripe_customer_id", "updated_at"])
        logger.info("Stripe customer %s created for tenant %s", customer.id, tenant.pk)
        return account.stripe_customer_id


def _checkout_line_items(plan: Plan) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [{"price": plan.stripe_price_id, "quantity": 1}]
    # Metered prices take no quantity: Stripe bills what the meters report.
    for price in (plan.stripe_metered_prices or {}).values():
        if isinstance(price, str) and price:
            items.append({"price": price})
    return items


def billing_checkout_create(*, tenant: Tenant, plan_slug: str) -> str:
    """A Stripe Checkout Session (mode subscription) for a paid plan; returns its URL."""
    plan = plan_for_checkout(plan_slug)
    require_setting("STRIPE_SECRET_KEY", "the platform's Stripe secret key, sk_live_… or sk_test_…")
    if not plan.stripe_price_id:
        raise ApplicationError(
            f"The {plan.slug} plan has no Stripe price yet: run `manage.py billing_sync_plans`",
            code="billing_not_configured",
            status=503,
        )
    success_url = require_setting("SLOP_BILLING_SUCCESS_URL", "where Checkout sends a team after paying")
    cancel_url = settings.SLOP_BILLING_CANCEL_URL or success_url
    account = billing_account_for(tenant)
    if account.status in LIVE_STATUSES and account.stripe_subscription_id:
        raise ApplicationError(
            f"This team already has a subscription ({account.plan.slug}, {account.status}): change "
            "or cancel it in the Customer Portal (POST /billing/portal)",
            code="conflict",
            status=409,
        )
    customer_id = billing_customer_ensure(tenant=tenant)
    metadata: dict[str, str] = {"slop_tenant": str(tenant.pk), "slop_plan": plan.slug}
    client = stripe_client()
    params: Any = {
        "mode": "subscription",
        "customer": customer_id,
        "line_items": _checkout_line_items(plan),
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": str(tenant.pk),
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
    }
    session = call(lambda: client.v1.checkout.sessions.create(params=params))
    url = as_dict(session).get("url")
    if not isinstance(url, str) or not url:
        raise ApplicationError(
            "Stripe made a Checkout Session without a URL", code="stripe_unavailable", status=502
        )
    return url


def billing_portal_create(*, tenant: Tenant) -> str:
    """A Stripe Customer Portal session for the team (invoices, payment method, cancellation)."""
    require_setting("STRIPE_SECRET_KEY", "the platform's Stripe secret key, sk_live_… or sk_test_…")
    return_url = settings.SLOP_BILLING_PORTAL_RETURN_URL
    if not return_url:
        raise not_configured(
            "SLOP_BILLING_PORTAL_RETURN_URL",
            "where the Customer Portal sends a team back; or SLOP_BILLING_SUCCESS_URL",
        )
    customer_id = billing_customer_ensure(tenant=tenant)
    client = stripe_client()
    session = call(
        lambda: client.v1.billing_portal.sessions.create(
            params={"customer": customer_id, "return_url": return_url}
        )
    )
    url = as_dict(session).get("url")
    if not isinstance(url, str) or not url:
        raise ApplicationError(
            "Stripe made a portal session without a URL", code="stripe_unavailable", status=502
        )
    return url


def grace_deadline(now: Any = None) -> Any:
    return (now or timezone.now()) + timedelta(days=settings.SLOP_BILLING_GRACE_DAYS)


def billing_end_expired_grace_periods(*, now: Any = None) -> list[int]:
    """Teams whose payment failed and whose grace period is over go down to the free plan (their
    data stays; the subscription at Stripe stays too, and a later paid invoice restores the plan).
    Returns the tenant ids moved."""
    now = now or timezone.now()
    free = plan_free()
    moved: list[int] = []
    # Crossing tenants on purpose: a platform job over every account.
    due = (
        BillingAccount.objects.unscoped()
        .filter(status=BillingAccount.Status.PAST_DUE, grace_until__lte=now)
        .exclude(plan=free)
    )
    for account_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            account = BillingAccount.objects.unscoped().select_for_update().filter(pk=account_id).first()
            if account is None or account.status != BillingAccount.Status.PAST_DUE:
                continue
            if account.grace_until is None or account.grace_until > now or account.plan_id == free.pk:
                continue
            previous = account.plan.slug
            account.plan = free
            account.save(update_fields=["plan", "updated_at"])
            plan_rate_limit_forget(account.tenant_id)
            logger.info("Tenant %s: grace period over, %s → free", account.tenant_id, previous)
            moved.append(int(account.tenant_id))
    return moved


__all__ = [
    "billing_account_for",
    "billing_checkout_create",
    "billing_customer_ensure",
    "billing_end_expired_grace_periods",
    "billing_portal_create",
    "grace_deadline",
    "plan_is_paid",
]
