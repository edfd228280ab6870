"""The seeded plans, for tests: migration 0003's own seeding run again (a transactional test
elsewhere in the run flushes every table, seeded rows included)."""

from __future__ import annotations

import importlib

from django.apps import apps

from apps.billing.models import Plan

_seed_migration = importlib.import_module("apps.billing.migrations.0003_seed_plans")


def seed_plans() -> dict[str, Plan]:
    _seed_migration.seed(apps, None)
    return {plan.slug: plan for plan in Plan.objects.all()}
