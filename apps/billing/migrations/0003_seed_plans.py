"""The plans every installation starts with. Operators edit them in the admin (and link them to
Stripe with `manage.py billing_sync_plans`); this migration never overwrites an edited plan."""

from __future__ import annotations

from typing import Any

from django.db import migrations

MB = 1024 * 1024
GB = 1024 * MB

# A frozen copy: apps/billing/plans.py SEED_PLANS may change later, this migration must not.
PLANS: list[dict[str, Any]] = [
    {
        "slug": "free",
        "name": "Free",
        "monthly_price_cents": 0,
        "included_tokens": 200_000,
        "included_tool_calls": 2_000,
        "included_memory_items": 1_000,
        "included_resource_bytes": 100 * MB,
        "included_api_keys": 3,
        "included_members": 3,
        "overage_allowed": False,
        "rate_limit_per_minute": None,  # the platform's SLOP_RATE_LIMIT_PER_MINUTE
    },
    {
        "slug": "pro",
        "name": "Pro",
        "monthly_price_cents": 2_900,
        "included_tokens": 5_000_000,
        "included_tool_calls": 50_000,
        "included_memory_items": 50_000,
        "included_resource_bytes": 5 * GB,
        "included_api_keys": 25,
        "included_members": 10,
        "overage_allowed": True,
        "rate_limit_per_minute": 3_000,
    },
    {
        "slug": "team",
        "name": "Team",
        "monthly_price_cents": 9_900,
        "included_tokens": 25_000_000,
        "included_tool_calls": 250_000,
        "included_memory_items": 250_000,
        "included_resource_bytes": 50 * GB,
        "included_api_keys": 100,
        "included_members": 50,
        "overage_allowed": True,
        "rate_limit_per_minute": 6_000,
    },
]


def seed(apps: Any, schema_editor: Any) -> None:
    plan_model = apps.get_model("billing", "Plan")
    for fields in PLANS:
        values = dict(fields)
        plan_model.objects.get_or_create(slug=values.pop("slug"), defaults=values)


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_metering")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop, elidable=False)]
