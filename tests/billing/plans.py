"""The seeded plans, for tests: migrations 0003 and 0005's own seeding run again (a transactional test
elsewhere in the run flushes every table, seeded rows included)."""

from __future__ import annotations

import importlib

from django.apps import apps

from apps.billing.models import Plan

_seed_migration = importlib.import_module("apps.billing.migrations.0003_seed_plans")
_unit_prices_migration = importlib.import_module("apps.billing.migrations.0005_seed_prices_and_caps")


def seed_plans() -> dict[str, Plan]:
    _seed_migration.seed(apps, None)
    _unit_prices_migration.seed(apps, None)
    return {plan.slug: plan for plan in Plan.objects.all()}
