from __future__ import annotations

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    label = "tenants"
    verbose_name = "Tenants and API keys"

    def ready(self) -> None:
        # Its signal receivers drop changed keys from every process's cache.
        from apps.tenants import authentication  # noqa: F401
