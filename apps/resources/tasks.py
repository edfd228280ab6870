"""Celery beat keeps the per-tenant resource-chunk indexes in step with how much each tenant stores.

(The background embedding of large writes runs as a job of the tools app: apps/resources/indexing.py.)
"""

from __future__ import annotations

from celery import shared_task

from apps.core.vector_indexes import sync_report_summary
from apps.resources.tenant_indexes import sync_chunk_indexes


@shared_task(name="resources.sync_tenant_indexes", ignore_result=True)
def sync_resource_tenant_indexes() -> dict[str, object]:
    return sync_report_summary(sync_chunk_indexes())
