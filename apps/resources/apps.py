from __future__ import annotations

from django.apps import AppConfig


class ResourcesConfig(AppConfig):
    name = "apps.resources"
    label = "resources"
    verbose_name = "Resources"

    def ready(self) -> None:
        # resources offers a built-in tool; registering it here keeps apps.tools from importing resources.
        from apps.resources.indexing import INDEX_JOB
        from apps.resources.tools import RESOURCE_SEARCH
        from apps.tools.builtins import builtin_register
        from apps.tools.job_kinds import job_kind_register

        builtin_register(RESOURCE_SEARCH)
        # Large writes are embedded by jobs that run (and are followed) as tool jobs are.
        job_kind_register(INDEX_JOB)

        # Billing caps: the plan's included resource storage counts content bytes (apps/billing/caps.py).
        from apps.billing.caps import register_counter
        from apps.resources.services import resource_bytes_stored

        register_counter("resource_bytes", resource_bytes_stored)

        # Vectors embedded by another model than the running one: said at start (slop_platform/startup.py).
        from apps.resources import checks  # noqa: F401 - registers the check
