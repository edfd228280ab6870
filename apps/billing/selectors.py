"""Reads: a team's usage (GET /usage, from the ledger) and its billing state (GET /billing, from its
account and this period's counter)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate

from apps.billing.accounts import account_for, current_period
from apps.billing.metering import Scope
from apps.billing.models import Plan, UsageCounter, UsageEvent
from apps.tenants.models import ApiKey, Membership, Tenant

GROUPS = ("day", "model", "key", "user", "agent")
METERED = ("input_tokens", "output_tokens", "tool_calls", "job_seconds")
MILLION = Decimal(1_000_000)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def unit_price(plan: Plan, unit: str) -> Decimal:
    """What a plan charges per unit past what it includes (unit_prices are per million)."""
    raw = (plan.unit_prices or {}).get(unit)
    if raw in (None, ""):
        return Decimal(0)
    try:
        return Decimal(str(raw)) / MILLION
    except InvalidOperation:
        return Decimal(0)


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def usage_summary(
    *, tenant: Tenant, start: date, end: date, group_by: str, per_day: bool = False
) -> list[dict[str, Any]]:
    """The tenant's metered usage from `start` to `end` (whole UTC days, both included), one row
    per group, with what it costs at the plan's unit prices. `per_day`: one row per day and group
    (each with its `day`), as the console's charts of a group over time need."""
    if per_day and group_by == "day":
        raise ValueError("per_day splits another grouping by day")
    rows = UsageEvent.objects.for_tenant(tenant).filter(
        created_at__gte=datetime.combine(start, time.min, tzinfo=UTC),
        created_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )
    column = {
        "day": TruncDate("created_at", tzinfo=UTC),
        "model": F("model"),
        "key": F("api_key_id"),
        "user": F("end_user"),
        "agent": F("agent"),
    }[group_by]
    split = {"day": TruncDate("created_at", tzinfo=UTC)} if per_day else {}
    totals = (
        rows.values(**split, group=column)
        .annotate(
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            tool_calls=Sum("tool_calls"),
            job_seconds=Sum("job_seconds"),
            requests=Count("id"),
        )
        .order_by(*split, "group")
    )
    plan = account_for(tenant).effective_plan
    prices = {unit: unit_price(plan, unit) for unit in METERED}
    keys: dict[int, str] = {}
    if group_by == "key":
        ids = [row["group"] for row in totals if row["group"] is not None]
        keys = dict(ApiKey.objects.for_tenant(tenant).filter(pk__in=ids).values_list("pk", "prefix"))
    found = []
    for row in totals:
        group = row["group"]
        if group_by == "day":
            label: str | None = group.isoformat()
        elif group_by == "key":
            label = keys.get(group) if group is not None else None
        else:
            label = group or None
        counts = {unit: int(row[unit] or 0) for unit in METERED}
        cost = sum((counts[unit] * prices[unit] for unit in METERED), Decimal(0))
        found.append(
            {
                **({"day": row["day"].isoformat()} if per_day else {}),
                "group": label,
                **counts,
                "requests": int(row["requests"]),
                "cost": _money(cost),
            }
        )
    return found


def _counter(tenant: Tenant, period_start: date) -> UsageCounter | None:
    return (
        UsageCounter.objects.for_tenant(tenant)
        .filter(period_start=period_start, scope=Scope.TENANT, subject="")
        .first()
    )


def billing_overview(*, tenant: Tenant) -> dict[str, Any]:
    """GET /billing: the plan, the period, what it includes against what was used, and what the
    next invoice will come to at this rate (the flat price plus usage past the included amounts,
    at the plan's unit prices, when its overage is on)."""
    account = account_for(tenant)
    plan = account.effective_plan
    start, end = current_period(account)
    counter = _counter(tenant, start.date())
    used = {unit: int(getattr(counter, unit, 0) or 0) for unit in METERED}
    tokens = used["input_tokens"] + used["output_tokens"]
    used_all: dict[str, int] = {
        "tokens": tokens,
        **used,
        "api_keys": ApiKey.objects.for_tenant(tenant).filter(revoked_at=None).count(),
        "members": Membership.objects.for_tenant(tenant).count(),
    }
    included = {
        "tokens": plan.included_tokens,
        "tool_calls": plan.included_tool_calls,
        "memory_items": plan.included_memory_items,
        "resource_bytes": plan.included_resource_bytes,
        "api_keys": plan.included_api_keys,
        "members": plan.included_members,
    }
    return {
        "plan": plan.slug,
        "plan_name": plan.name,
        "status": account.status,
        "period_start": _iso(start),
        "period_end": _iso(end),
        "overage_allowed": plan.overage_allowed,
        "included": included,
        "used": used_all,
        "next_invoice": _estimate(plan, used, end),
    }


def _estimate(plan: Plan, used: dict[str, int], period_end: datetime) -> dict[str, Any]:
    lines = [
        {
            "item": f"{plan.name} plan",
            "quantity": 1,
            "amount": _money(Decimal(plan.monthly_price_cents) / 100),
        }
    ]
    if plan.overage_allowed:
        tokens = used["input_tokens"] + used["output_tokens"]
        over = max(0, tokens - plan.included_tokens) if plan.included_tokens is not None else 0
        # Past the included tokens, input and output are billed in the proportion they were used.
        share_in = Decimal(used["input_tokens"]) / tokens if tokens else Decimal(0)
        over_in = int((over * share_in).to_integral_value(rounding=ROUND_HALF_UP))
        billable = {
            "input_tokens": over_in,
            "output_tokens": over - over_in,
            "tool_calls": max(0, used["tool_calls"] - (plan.included_tool_calls or 0))
            if plan.included_tool_calls is not None
            else 0,
            "job_seconds": used["job_seconds"],
        }
        for unit, quantity in billable.items():
            price = unit_price(plan, unit)
            if quantity and price:
                lines.append({"item": unit, "quantity": quantity, "amount": _money(quantity * price)})
    total = sum((Decimal(str(line["amount"])) for line in lines), Decimal(0))
    return {
        "date": _iso(period_end),
        "currency": getattr(settings, "SLOP_BILLING_CURRENCY", "usd"),
        "amount": _money(total),
        "lines": lines,
    }
