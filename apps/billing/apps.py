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
