"""Seeded plans, second step (never overwriting what an operator edited):
- what the paid plans charge past what they include (per million units, in the plan's currency),
  so `manage.py billing_sync_plans` has metered prices to create (only where unit_prices is empty);
- the free plan's caps on API keys and members, now that they are enforced (apps/billing/caps.py):
  3 keys is less than a team needs for separate environments and scoped keys, so 10 keys and 5
  members (only where the value is still 0003's)."""

from __future__ import annotations

from typing import Any

from django.db import migrations

# Frozen copies, as in 0003.
UNIT_PRICES: dict[str, dict[str, str]] = {
    "pro": {"input_tokens": "2.00", "output_tokens": "8.00", "tool_calls": "500", "job_seconds": "10"},
    "team": {"input_tokens": "1.50", "output_tokens": "6.00", "tool_calls": "400", "job_seconds": "8"},
}
FREE_CAPS: dict[str, tuple[int, int]] = {  # field: (0003's value, the new one)
    "included_api_keys": (3, 10),
    "included_members": (3, 5),
}


def seed(apps: Any, schema_editor: Any) -> None:
    plan_model = apps.get_model("billing", "Plan")
    for slug, prices in UNIT_PRICES.items():
        plan_model.objects.filter(slug=slug, unit_prices={}).update(unit_prices=prices)
    for field, (seeded, value) in FREE_CAPS.items():
        plan_model.objects.filter(slug="free", **{field: seeded}).update(**{field: value})


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_billing_stripe_event")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop, elidable=False)]
