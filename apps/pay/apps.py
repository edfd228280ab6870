from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class PayConfig(AppConfig):
    name = "apps.pay"
    label = "pay"
    verbose_name = "Payments"

    def slop_capabilities(self, principal: Any) -> dict[str, Any]:
        """`payments` only when a charge could be made: the platform's Stripe key, or the tenant's."""
        from django.conf import settings

        from apps.pay.gateway import payments_configured_for

        if principal is None:
            return {"payments": bool(settings.STRIPE_SECRET_KEY)}
        return {"payments": payments_configured_for(principal.tenant)}

    def slop_info(self, principal: Any) -> dict[str, Any]:
        from apps.pay.gateway import payments_configured_for

        return {"payments": {"configured": payments_configured_for(principal.tenant)}}
