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

        from apps.pay.gateway import payments_configured_cached

        if principal is None:
            return {"payments": bool(settings.STRIPE_SECRET_KEY)}
        return {"payments": payments_configured_cached(principal.tenant)}

    def slop_info(self, principal: Any) -> dict[str, Any]:
        from apps.pay.gateway import payments_configured_cached

        return {"payments": {"configured": payments_configured_cached(principal.tenant)}}

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.pay.gateway import tenant_payment_snapshots
        from apps.pay.models import PaymentSettings

        def forget(sender: Any, instance: PaymentSettings, **kwargs: Any) -> None:
            tenant_payment_snapshots.forget_changed(instance.tenant_id)

        for signal in (post_save, post_delete):
            signal.connect(forget, sender=PaymentSettings, weak=False, dispatch_uid="pay-forget-snapshot")
