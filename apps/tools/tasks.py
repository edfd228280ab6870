"""Celery tasks: thin adapters over apps.tools.jobs. They take the tenant id explicitly."""

from __future__ import annotations

from celery import shared_task

from apps.tools.jobs import RUN_JOB_TASK, tool_job_run, tool_jobs_reap


@shared_task(name=RUN_JOB_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_tool_job(tenant_id: int, job_id: str) -> str:
    # Acknowledged after it returns, and safe to deliver twice (see apps/tools/jobs.py).
    return tool_job_run(tenant_id=tenant_id, job_id=job_id)


@shared_task(name="tools.reap_stale_jobs", ignore_result=True)
def reap_stale_jobs() -> int:
    return tool_jobs_reap()
