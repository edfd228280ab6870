"""Background jobs that are not tool calls, run by the same machinery as tool jobs.

An app above tools (resources: embedding a large upload's chunks) registers a `JobKind` from its
AppConfig.ready(); its jobs are `ToolJob` rows whose `tool_slug` is the kind's name, which holds a
dot and so can never be a tool id. They get everything a tool job has: the Celery task and its
advisory lock, retries of a dead worker, the reaper, `GET /tools/jobs/:id`, its SSE stream and
`DELETE` to cancel. What differs is declared here: what runs, and which scope reaches the job
(a resource's job is reached with that resource's scopes, not with a tool's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from apps.tenants.scopes import Action

if TYPE_CHECKING:
    from apps.tools.models import ToolJob


@dataclass(frozen=True)
class JobKind:
    """`run(job)` returns the job's result (JSON) or raises ApplicationError (the job fails with its
    message); it may check the job is still running between steps, to stop when cancelled.
    `action(job, permission)` is the scope that reaches the job for `read` (see it) or `execute`
    (see it, cancel it)."""

    name: str
    run: Callable[[ToolJob], Any]
    action: Callable[[ToolJob, str], Action]
    crash_message: str = "Internal error while running the job"


JOB_KINDS: dict[str, JobKind] = {}


def job_kind_register(kind: JobKind) -> None:
    if "." not in kind.name:
        raise ImproperlyConfigured(f"A job kind's name holds a dot (no tool id can): {kind.name!r}")
    existing = JOB_KINDS.get(kind.name)
    if existing is not None and existing != kind:
        raise ImproperlyConfigured(f"Two job kinds are named {kind.name!r}")
    JOB_KINDS[kind.name] = kind


def job_kind_of(job: ToolJob) -> JobKind | None:
    return JOB_KINDS.get(job.tool_slug)
