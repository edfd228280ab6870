"""Plans as configuration: the free plan every team starts on, the plans offered for checkout, and
the rate limit a team's plan gives its keys (looked up by the tenants' rate limiter through the
hook registered in BillingConfig.ready())."""

from __future__ import annotations

import threading
import time

from django.conf import settings

from apps.billing.models import BillingAccount, Plan
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant

FREE = "free"

# The free plan as migration 0003 seeds it, for a database whose rows were flushed (a
# transactional test) or an installation that deleted it: a team is never without a plan.
FREE_PLAN_DEFAULTS = {
    "name": "Free",
    "monthly_price_cents": 0,
    "included_tokens": 200_000,
    "included_tool_calls": 2_000,
    "included_memory_items": 1_000,
    "included_resource_bytes": 100 * 1024 * 1024,
    "included_api_keys": 3,
    "included_members": 3,
    "overage_allowed": False,
    "rate_limit_per_minute": None,
}


def plan_free() -> Plan:
    plan, _ = Plan.objects.get_or_create(slug=FREE, defaults=FREE_PLAN_DEFAULTS)
    return plan


def plan_is_paid(plan: Plan) -> bool:
    return plan.slug != FREE and (plan.monthly_price_cents > 0 or bool(plan.stripe_price_id))


def plan_for_checkout(slug: str) -> Plan:
    """A plan a team may subscribe to: public and paid; else a 400 naming the ones it may."""
    plan = Plan.objects.filter(slug=slug).first()
    offered = [p.slug for p in Plan.objects.filter(is_public=True) if plan_is_paid(p)]
    if plan is None or not plan.is_public:
        raise ApplicationError(
            f"Unknown plan {slug!r}; plans to subscribe to: {', '.join(offered) or 'none'}",
            code="unknown_plan",
            status=400,
            extra={"plans": offered},
        )
    if not plan_is_paid(plan):
        raise ApplicationError(
            f"The {plan.slug} plan needs no checkout: every team is on it without a subscription "
            "(cancel a subscription in the Customer Portal, POST /billing/portal)",
            code="invalid_request",
            status=400,
            extra={"plans": offered},
        )
    return plan


def plan_for_price(price_id: str) -> Plan | None:
    """The plan whose flat monthly price this is (what a subscription's items name)."""
    if not price_id:
        return None
    return Plan.objects.filter(stripe_price_id=price_id).first()


# --- The rate limit of a team's plan ------------------------------------------------------------
# Asked on every keyed request, so a process keeps each answer as long as it trusts a looked-up key
# (SLOP_KEY_CACHE_SECONDS): a plan change reaches every process within that time.

_limits: dict[int, tuple[float, int | None]] = {}
_limits_lock = threading.Lock()


def plan_rate_limit(tenant: Tenant) -> int | None:
    """Requests per minute per key the tenant's plan (or override) allows; None: the default."""
    now = time.monotonic()
    tenant_id = int(tenant.pk)
    with _limits_lock:
        cached = _limits.get(tenant_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    account = BillingAccount.objects.for_tenant(tenant_id).select_related("plan", "override_plan").first()
    plan = account.effective_plan if account is not None else Plan.objects.filter(slug=FREE).first()
    limit = plan.rate_limit_per_minute if plan is not None else None
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl > 0:
        with _limits_lock:
            _limits[tenant_id] = (now + ttl, limit)
    return limit


def plan_rate_limit_forget(tenant_id: int | None = None) -> None:
    """This process asks again (after a change it made itself; others see it within the TTL)."""
    with _limits_lock:
        if tenant_id is None:
            _limits.clear()
        else:
            _limits.pop(int(tenant_id), None)
