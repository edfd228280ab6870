from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "apps.memory"
    label = "memory"
    verbose_name = "Memory"

    def slop_capabilities(self, principal: Any) -> dict[str, Any]:
        # POST /memory/query (and resource search by meaning) needs an embedding provider.
        from apps.core.embeddings import embeddings_available

        return {"semantic_search": embeddings_available()}

    def ready(self) -> None:
        # memory offers built-in tools; registering them here keeps apps.tools from importing memory.
        from apps.memory.tools import MEMORY_SEARCH, MEMORY_WRITE
        from apps.tools.builtins import builtin_register

        builtin_register(MEMORY_SEARCH)
        builtin_register(MEMORY_WRITE)

        # Billing caps: the plan's included memory items count the tenant's keys (apps/billing/caps.py).
        from apps.billing.caps import register_counter
        from apps.memory.models import MemoryItem

        register_counter("memory_items", lambda tenant_id: MemoryItem.objects.for_tenant(tenant_id).count())

        # Vectors embedded by another model than the running one: said at start (slop_platform/startup.py).
        from apps.memory import checks  # noqa: F401 - registers the check
