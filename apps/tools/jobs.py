"""The life of a tool job: queued → running → succeeded | failed, or cancelled at any point.

Safe to run twice, and a dead worker never leaves a job `running`:
- the runner holds a PostgreSQL session advisory lock on the job while it runs. PostgreSQL drops
  it when the runner's connection dies (worker killed, machine gone), so "running but unlocked"
  means the runner is dead;
- a delivery that finds the lock taken leaves (another runner has it); one that finds the job
  finished leaves; one that finds it `running` and unlocked is a retry of a dead attempt;
- `tool_job_refresh` (called when a job is read, streamed, and by the periodic reaper) re-queues a
  job whose runner died, up to TOOLS_JOB_MAX_ATTEMPTS attempts, then fails it; fails a job still
  running past its timeout plus a grace period; and re-sends a job the broker never delivered;
- a runner writes its outcome only if the job is still its own attempt and still running, so a
  cancelled or reaped job keeps its status.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.billing.metering import Kind, Usage, meter
from apps.core.degraded import BROKER_OUTAGE, REDIS_OUTAGE
from apps.core.errors import ApplicationError
from apps.core.ids import new_id
from apps.tenants.models import Tenant
from apps.tools.events import job_publish
from apps.tools.job_kinds import JOB_KINDS
from apps.tools.models import ToolJob
from apps.tools.runner import tool_execute
from apps.tools.selectors import tool_spec_get
from apps.tools.spec import ToolSpec

RUN_JOB_TASK = "tools.run_job"  # run_tool_job in apps/tools/tasks.py is registered under it

logger = logging.getLogger("slop.tools")
_LOCK_NAMESPACE = 7001  # first key of the two-key advisory lock; the second is the job's row id
Status = ToolJob.Status


def _lock_args(job_pk: int) -> list[int]:
    return [_LOCK_NAMESPACE, job_pk & 0x7FFFFFFF]


@contextmanager
def _runner_lock(job_pk: int) -> Iterator[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", _lock_args(job_pk))
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", _lock_args(job_pk))


def _runner_alive(job_pk: int) -> bool:
    """Inside a transaction: whether some session holds the job's runner lock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", _lock_args(job_pk))
        return not cursor.fetchone()[0]


def _send(job: ToolJob) -> None:
    # By name: the task (apps/tools/tasks.py) is an adapter over this module, and a service does
    # not import its own adapter. ToolsConfig.ready() imports the tasks, so the name is registered;
    # a registered task (unlike send_task) keeps the eager mode of the embedded default.
    try:
        current_app.tasks[RUN_JOB_TASK].apply_async(args=[job.tenant_id, job.public_id])
    except BROKER_OUTAGE + REDIS_OUTAGE:
        # The job is stored as queued: the beat task sends it again once the broker is back
        # (TOOLS_JOB_REQUEUE_SECONDS), so the caller still gets its 202 and job id.
        logger.warning("The job queue is unavailable; job %s waits to be sent again", job.public_id)


def tool_job_create(
    *, tenant: Tenant, spec: ToolSpec, parameters: dict[str, Any], call_id: str | None, api_key_id: int | None
) -> ToolJob:
    """A queued job, sent to the workers once this transaction commits."""
    job = ToolJob.objects.create(
        tenant=tenant,
        public_id=new_id("job"),
        tool_id=spec.row_id if spec.kind == "webhook" else None,
        tool_slug=spec.id,
        # The id the webhook receives, kept from the start: a job run again sends the same one.
        call_id=call_id or new_id("call"),
        parameters=parameters,
        timeout_seconds=spec.timeout_seconds,
        api_key_id=api_key_id,
        enqueued_at=timezone.now(),
    )
    transaction.on_commit(lambda: _send(job))
    return job


def background_job_create(
    *,
    tenant: Tenant | int,
    kind: str,
    parameters: dict[str, Any],
    timeout_seconds: float,
    api_key_id: int | None,
) -> ToolJob:
    """A queued job of a registered kind (apps/tools/job_kinds.py), sent once this transaction commits."""
    if kind not in JOB_KINDS:
        raise ValueError(f"No job kind {kind!r} is registered")
    job = ToolJob.objects.create(
        tenant_id=tenant.pk if isinstance(tenant, Tenant) else tenant,
        public_id=new_id("job"),
        tool_slug=kind,
        parameters=parameters,
        timeout_seconds=timeout_seconds,
        api_key_id=api_key_id,
        enqueued_at=timezone.now(),
    )
    transaction.on_commit(lambda: _send(job))
    return job


def _execute(job: ToolJob, tenant_id: int) -> Any:
    kind = JOB_KINDS.get(job.tool_slug)
    if kind is not None:
        return kind.run(job)
    spec = tool_spec_get(tenant=tenant_id, tool_id=job.tool_slug)
    if spec is None or not spec.enabled:
        raise ApplicationError(f"Tool {job.tool_slug} no longer exists or is disabled", code="not_found")
    return tool_execute(tenant=tenant_id, spec=spec, parameters=job.parameters, call_id=job.call_id)


def _finish(job: ToolJob, status: str, *, result: Any = None, error: str = "", code: str = "") -> ToolJob:
    job.status = status
    job.result = result
    job.error = error
    job.error_code = code
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "result", "error", "error_code", "finished_at"])
    return job


def tool_job_run(*, tenant_id: int, job_id: str) -> str:
    """Run one job (the Celery task's body). Returns what happened, for logs and tests."""
    found = (
        ToolJob.objects.for_tenant(tenant_id).filter(public_id=job_id).values_list("pk", flat=True).first()
    )
    if found is None:
        return "missing"
    with _runner_lock(found) as acquired:
        if not acquired:
            return "busy"  # another live runner has it
        with transaction.atomic():
            job = ToolJob.objects.for_tenant(tenant_id).select_for_update().get(pk=found)
            if job.is_finished:
                return "finished"
            if job.status == Status.RUNNING and job.attempts >= settings.TOOLS_JOB_MAX_ATTEMPTS:
                _finish(job, Status.FAILED, error=_worker_lost(job), code="worker_lost")
                transaction.on_commit(lambda: job_publish(job))
                return "failed"
            job.status = Status.RUNNING
            job.attempts += 1
            job.started_at = timezone.now()
            job.save(update_fields=["status", "attempts", "started_at"])
        job_publish(job)
        attempt = job.attempts
        outcome: dict[str, Any]
        try:
            result = _execute(job, tenant_id)
            outcome = {"status": Status.SUCCEEDED, "result": result, "error": "", "error_code": ""}
        except ApplicationError as exc:
            outcome = {"status": Status.FAILED, "result": None, "error": exc.message, "error_code": exc.code}
        except Exception:
            logger.exception("Job %s (%s) crashed", job.public_id, job.tool_slug)
            kind = JOB_KINDS.get(job.tool_slug)
            outcome = {
                "status": Status.FAILED,
                "result": None,
                "error": kind.crash_message if kind else "Internal error while running the tool",
                "error_code": "internal_error",
            }
        finished_at = timezone.now()
        with transaction.atomic():  # the outcome and the seconds it took to get: one commit
            written = (
                ToolJob.objects.for_tenant(tenant_id)
                .filter(pk=job.pk, status=Status.RUNNING, attempts=attempt)
                .update(finished_at=finished_at, **outcome)
            )
            if written and job.started_at is not None:
                seconds = math.ceil((finished_at - job.started_at).total_seconds())
                meter(
                    usage=Usage(tenant_id=tenant_id, api_key_id=job.api_key_id),
                    kind=Kind.JOB,
                    tool=job.tool_slug,
                    job_seconds=max(seconds, 1),
                    at=finished_at,
                )
    if written:
        job.refresh_from_db()
        job_publish(job)
        return str(outcome["status"])
    return "superseded"  # cancelled or reaped while it ran: its status stays


def _worker_lost(job: ToolJob) -> str:
    return f"The worker running this job stopped {job.attempts} time(s); giving up"


def tool_job_refresh(job: ToolJob) -> ToolJob:
    """Repair a job whose runner died, hung or never got it; returns the job as it now is."""
    now = timezone.now()
    if job.status == Status.QUEUED:
        enqueued = job.enqueued_at or job.created_at
        if enqueued + timedelta(seconds=settings.TOOLS_JOB_REQUEUE_SECONDS) < now:
            updated = (
                ToolJob.objects.for_tenant(job.tenant_id)
                .filter(pk=job.pk, status=Status.QUEUED, enqueued_at=job.enqueued_at)
                .update(enqueued_at=now)
            )
            if updated:
                logger.warning("Job %s was not picked up; sending it again", job.public_id)
                _send(job)
                job.refresh_from_db()  # an eager (in-process) worker may have run it already
        return job
    if job.status != Status.RUNNING:
        return job
    changed = False
    with transaction.atomic():
        current = ToolJob.objects.for_tenant(job.tenant_id).select_for_update().get(pk=job.pk)
        if current.status != Status.RUNNING:
            return current
        deadline = (current.started_at or now) + timedelta(
            seconds=current.timeout_seconds + settings.TOOLS_JOB_GRACE_SECONDS
        )
        if not _runner_alive(current.pk):
            changed = True
            if current.attempts >= settings.TOOLS_JOB_MAX_ATTEMPTS:
                _finish(current, Status.FAILED, error=_worker_lost(current), code="worker_lost")
            else:
                logger.warning("The runner of job %s died; queueing it again", current.public_id)
                current.status = Status.QUEUED
                current.enqueued_at = now
                current.save(update_fields=["status", "enqueued_at"])
                transaction.on_commit(lambda: _send(current))
        elif deadline < now:
            changed = True
            _finish(
                current,
                Status.FAILED,
                error=f"The job ran longer than its timeout of {current.timeout_seconds:g} seconds",
                code="timeout",
            )
    if changed:
        job_publish(current)
    return current


def tool_jobs_reap(*, limit: int = 500) -> int:
    """The periodic sweep (Celery beat): refresh every unfinished job old enough to need it."""
    now = timezone.now()
    stale = (
        ToolJob.objects.unscoped()  # operators' sweep across tenants
        .filter(status__in=[Status.QUEUED, Status.RUNNING])
        .filter(created_at__lt=now - timedelta(seconds=1))
        .order_by("created_at")[:limit]
    )
    changed = 0
    for job in stale:
        before = (job.status, job.enqueued_at)
        after = tool_job_refresh(job)
        changed += (after.status, after.enqueued_at) != before
    return changed


def tool_job_cancel(*, job: ToolJob) -> ToolJob:
    with transaction.atomic():
        current = ToolJob.objects.for_tenant(job.tenant_id).select_for_update().get(pk=job.pk)
        if current.is_finished:
            raise ApplicationError(
                f"Job {current.public_id} is already {current.status}; it cannot be cancelled",
                code="conflict",
                status=409,
            )
        _finish(current, Status.CANCELLED, error="Cancelled by the caller", code="cancelled")
    job_publish(current)
    return current
