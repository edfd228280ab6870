"""A team's billing account and what it may use this period.

`account_for(tenant)` is the one way to a tenant's BillingAccount: made on first use on the `free`
plan (seeded by the billing migrations; made here, unlimited, on a database that has none).
`limits_for(tenant)` is what the quota check reads on every billable request, so it is kept per
process for SLOP_BILLING_ACCOUNT_CACHE_SECONDS (a plan change reaches every process within it).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.billing.models import BillingAccount, Plan
from apps.tenants.models import Tenant

FREE_PLAN = "free"


def free_plan() -> Plan:
    plan, _ = Plan.objects.get_or_create(slug=FREE_PLAN, defaults={"name": "Free"})
    return plan


def account_for(tenant: Tenant | int) -> BillingAccount:
    """The tenant's billing account (with its plans loaded), made on the free plan on first use."""
    tenant_id = tenant if isinstance(tenant, int) else int(tenant.pk)
    rows = BillingAccount.objects.for_tenant(tenant_id).select_related("plan", "override_plan")
    account = rows.first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            BillingAccount.objects.create(tenant_id=tenant_id, plan=free_plan())
    except IntegrityError:  # another request made it first
        pass
    return rows.get()


def calendar_month(now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def current_period(account: BillingAccount, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The billing period `now` falls in: the subscription's (from Stripe) while it covers now, else
    the calendar month (UTC)."""
    now = now or timezone.now()
    if account.period_start and account.period_end and account.period_start <= now < account.period_end:
        return account.period_start, account.period_end
    return calendar_month(now)


@dataclass(frozen=True)
class Limits:
    """What the quota check needs to know about a tenant, as of `fetched_at`."""

    tenant_id: int
    plan_slug: str
    period_start: date  # the counters' key
    tokens: int | None  # the plan's included tokens when overage is off; None: no tenant limit
    tool_calls: int | None
    end_user_tokens: int | None
    fetched_at: float
    period_end: datetime

    @property
    def any_tenant_limit(self) -> bool:
        return self.tokens is not None or self.tool_calls is not None


_cache: dict[int, Limits] = {}
_lock = threading.Lock()


def clear_limits_cache() -> None:
    with _lock:
        _cache.clear()


def limits_for(tenant: Tenant | int) -> Limits:
    tenant_id = tenant if isinstance(tenant, int) else int(tenant.pk)
    now = time.monotonic()
    with _lock:
        cached = _cache.get(tenant_id)
    if (
        cached is not None
        and now - cached.fetched_at < settings.SLOP_BILLING_ACCOUNT_CACHE_SECONDS
        and timezone.now() < cached.period_end
    ):
        return cached
    account = account_for(tenant_id)
    plan = account.effective_plan
    start, end = current_period(account)
    capped = not plan.overage_allowed
    limits = Limits(
        tenant_id=tenant_id,
        plan_slug=plan.slug,
        period_start=start.date(),
        tokens=plan.included_tokens if capped else None,
        tool_calls=plan.included_tool_calls if capped else None,
        end_user_tokens=account.end_user_monthly_token_cap,
        fetched_at=now,
        period_end=end,
    )
    if settings.SLOP_BILLING_ACCOUNT_CACHE_SECONDS > 0:
        with _lock:
            _cache[tenant_id] = limits
    return limits
