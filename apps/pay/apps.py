from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class PayConfig(AppConfig):
    name = "apps.pay"
    label = "pay"
    verbose_name = "Payments"
    slop_capabilities: dict[str, Any] = {"payments": True}

    def slop_info(self, principal: Any) -> dict[str, Any]:
        from apps.pay.gateway import payments_configured_for

        return {"payments": {"configured": payments_configured_for(principal.tenant)}}
