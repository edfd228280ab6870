"""Reads: which tools a tenant has, which ones a caller may see or run, and jobs."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from apps.core.errors import NotFound
from apps.core.tenant_cache import TenantSnapshots
from apps.tenants.access import allows, readable
from apps.tenants.authentication import Principal
from apps.tenants.models import Tenant
from apps.tenants.scopes import Action
from apps.tools.builtins import BUILTINS, Builtin
from apps.tools.job_kinds import JOB_KINDS
from apps.tools.models import Tool, ToolJob
from apps.tools.spec import ToolSpec


def _builtin_spec(builtin: Builtin, override: Tool | None) -> ToolSpec:
    return ToolSpec(
        id=builtin.id,
        description=builtin.description,
        schema=builtin.schema,
        safe=override.safe if override is not None else builtin.safe,
        long_running=override.long_running if override is not None else False,
        kind=Tool.Kind.BUILTIN,
        enabled=override.enabled if override is not None else True,
        timeout_seconds=settings.TOOLS_DEFAULT_TIMEOUT,
        example=builtin.example,
        row_id=override.pk if override is not None else None,
        created_at=override.created_at if override is not None else None,
        updated_at=override.updated_at if override is not None else None,
    )


def _row_spec(row: Tool) -> ToolSpec:
    return ToolSpec(
        id=row.slug,
        description=row.description,
        schema=row.schema,
        safe=row.safe,
        long_running=row.long_running,
        kind=row.kind,
        enabled=row.enabled,
        timeout_seconds=row.timeout_seconds or settings.TOOLS_DEFAULT_TIMEOUT,
        example=row.example,
        webhook_url=row.webhook_url,
        row_id=row.pk,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _spec(row: Tool | None, tool_id: str) -> ToolSpec | None:
    builtin = BUILTINS.get(tool_id)
    if builtin is not None:
        return _builtin_spec(builtin, row)
    return _row_spec(row) if row is not None else None


def tenant_tools(*, tenant: Tenant | int) -> list[ToolSpec]:
    """Every tool of the tenant, disabled ones included: built-ins first, then by id."""
    # Signing secrets are never needed to describe a tool; deferring them skips their decryption.
    rows = {row.slug: row for row in Tool.objects.for_tenant(tenant).defer("signing_secret")}
    specs = [_builtin_spec(builtin, rows.pop(builtin.id, None)) for builtin in BUILTINS.values()]
    specs.extend(_row_spec(row) for row in sorted(rows.values(), key=lambda row: row.slug))
    return specs


# What a chat offers the model, and /info, is read from a snapshot (apps/core/tenant_cache.py);
# running a tool looks it up afresh.
chat_tool_snapshots = TenantSnapshots(lambda tenant_id: tuple(tenant_tools(tenant=tenant_id)))


def tool_spec_get(*, tenant: Tenant | int, tool_id: str) -> ToolSpec | None:
    row = Tool.objects.for_tenant(tenant).defer("signing_secret").filter(slug=tool_id).first()
    return _spec(row, tool_id)


def tool_row_get(*, tenant: Tenant | int, tool_id: str) -> Tool | None:
    return Tool.objects.for_tenant(tenant).filter(slug=tool_id).first()


def may_read(principal: Principal, spec: ToolSpec) -> bool:
    return allows(principal, Action("tools", "read", spec.id, safe_tool=spec.safe))


def may_execute(principal: Principal, spec: ToolSpec) -> bool:
    return allows(principal, Action("tools", "execute", spec.id, safe_tool=spec.safe))


def tools_for(*, principal: Principal, snapshot: bool = False) -> list[ToolSpec]:
    """The enabled tools the caller may read or execute (what GET /tools lists); from the tenant's
    snapshot with `snapshot` (/info)."""
    specs = (
        chat_tool_snapshots.get(int(principal.tenant.pk))
        if snapshot
        else tenant_tools(tenant=principal.tenant)
    )
    return [
        spec for spec in specs if spec.enabled and (may_read(principal, spec) or may_execute(principal, spec))
    ]


def tools_executable_by(*, principal: Principal) -> list[ToolSpec]:
    """The enabled tools the effective scope may execute (what a model is offered during /chat)."""
    return [
        spec
        for spec in chat_tool_snapshots.get(int(principal.tenant.pk))
        if spec.enabled and may_execute(principal, spec)
    ]


def tenant_tool_ids(*, tenant_id: int) -> set[str]:
    """The ids of every tool of the tenant, disabled ones included (from the snapshot)."""
    return {spec.id for spec in chat_tool_snapshots.get(tenant_id)}


def tool_executable_by(*, principal: Principal, tool_id: str) -> ToolSpec | None:
    """The one tool of that id from tools_executable_by's list (the snapshot), or None."""
    for spec in chat_tool_snapshots.get(int(principal.tenant.pk)):
        if spec.id == tool_id:
            return spec if spec.enabled and may_execute(principal, spec) else None
    return None


JOB_ID = re.compile(r"^job_[A-Za-z0-9]{1,36}$")


def tool_job_get(*, tenant: Tenant | int, job_id: str) -> ToolJob:
    found = JOB_ID.match(job_id) is not None
    job = ToolJob.objects.for_tenant(tenant).filter(public_id=job_id).first() if found else None
    if job is None:
        raise NotFound(f"Job not found: {job_id}")
    return job


def tool_jobs_recent(*, tenant: Tenant | int, tool_id: str | None = None, limit: int = 50) -> list[ToolJob]:
    jobs = ToolJob.objects.for_tenant(tenant)
    if tool_id is not None:
        jobs = jobs.filter(tool_slug=tool_id)
    return list(jobs.order_by("-created_at", "-pk")[:limit])


def tool_as_dict(spec: ToolSpec, *, detail: bool = False, show_url: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": spec.id,
        "description": spec.description,
        "parameters": spec.parameters,
        "safe": spec.safe,
        "long_running": spec.long_running,
    }
    if detail:
        body.update(
            {
                "schema": spec.schema,
                "example": spec.example,
                "kind": spec.kind,
                "enabled": spec.enabled,
                "timeout_seconds": spec.timeout_seconds,
                "created_at": spec.created_at,
                "updated_at": spec.updated_at,
            }
        )
        if show_url and spec.kind == Tool.Kind.WEBHOOK:
            body["url"] = spec.webhook_url
    return body


def tool_jobs_visible(*, principal: Principal, tool_id: str | None = None, status: str | None = None) -> Any:
    """The team's jobs whose tool the caller may read or execute (a queryset, filtered in SQL).

    Tool jobs only: a job of another kind (apps/tools/job_kinds.py) is reached through its own
    scopes, by its id."""
    jobs = ToolJob.objects.for_tenant(principal.tenant).exclude(tool_slug__in=list(JOB_KINDS))
    if (
        readable(principal, "tools", "read") is not None
        and readable(principal, "tools", "execute") is not None
    ):
        visible = [
            spec.id
            for spec in tenant_tools(tenant=principal.tenant)
            if may_read(principal, spec) or may_execute(principal, spec)
        ]
        jobs = jobs.filter(tool_slug__in=visible)
    if tool_id is not None:
        jobs = jobs.filter(tool_slug=tool_id)
    if status is not None:
        jobs = jobs.filter(status=status)
    return jobs
