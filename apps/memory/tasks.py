"""Celery beat keeps the per-tenant memory indexes in step with how much each tenant stores."""

from __future__ import annotations

from celery import shared_task

from apps.core.vector_indexes import sync_report_summary
from apps.memory.tenant_indexes import sync_tenant_indexes


@shared_task(name="memory.sync_tenant_indexes", ignore_result=True)
def sync_memory_tenant_indexes() -> dict[str, object]:
    return sync_report_summary(sync_tenant_indexes())
