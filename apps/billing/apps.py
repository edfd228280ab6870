from __future__ import annotations

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "apps.billing"
    label = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Tenants sit below billing: the rate limiter asks the plan through this hook.
        from apps.billing.plans import plan_rate_limit
        from apps.tenants.throttling import register_plan_rate_limit

        register_plan_rate_limit(plan_rate_limit)

        # ... and every new API key must fit the plan's cap on keys (apps/billing/caps.py).
        from apps.billing.caps import ensure_api_key_room
        from apps.tenants.services import register_api_key_create_check

        register_api_key_create_check(ensure_api_key_room)
