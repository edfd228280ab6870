"""Celery beat keeps the per-tenant memory indexes in step with how much each tenant stores."""

from __future__ import annotations

from celery import shared_task

from apps.memory.tenant_indexes import sync_tenant_indexes


@shared_task(name="memory.sync_tenant_indexes", ignore_result=True)
def sync_memory_tenant_indexes() -> dict[str, object]:
    report = sync_tenant_indexes()
    return {"built": sorted(report.built), "dropped": report.dropped, "failed": sorted(report.failed)}
