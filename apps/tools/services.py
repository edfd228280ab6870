"""Writes and actions on tools: calling one (the interface /tools and /chat share), registering
webhook tools, tenant settings for built-ins, and cancelling jobs."""

from __future__ import annotations

import re
import time
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import get_script_prefix

from apps.billing.metering import Kind, Usage, meter
from apps.billing.quotas import reserve_tool_call
from apps.core.errors import ApplicationError, ValidationFailed
from apps.core.serializers import validated
from apps.tenants.authentication import Principal
from apps.tools.builtins import BUILTINS
from apps.tools.jobs import tool_job_cancel as _job_cancel
from apps.tools.jobs import tool_job_create, tool_job_refresh
from apps.tools.models import Tool, ToolJob
from apps.tools.runner import tool_execute
from apps.tools.schemas import validate_parameters
from apps.tools.selectors import tool_row_get, tool_spec_get
from apps.tools.serializers import WebhookToolSerializer
from apps.tools.spec import ToolSpec
from apps.tools.webhooks import new_signing_secret

TOOL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
RESERVED_IDS = frozenset({"jobs"})


def tool_id_problem(tool_id: str) -> str | None:
    if tool_id in RESERVED_IDS:
        return f"{tool_id!r} is reserved (GET /tools/jobs/… are job routes)"
    if not TOOL_ID.match(tool_id):
        return "a tool id is 1-64 letters, digits, '_' or '-', starting with a letter or digit"
    return None


def tool_call(
    *,
    principal: Principal,
    spec: ToolSpec,
    parameters: dict[str, Any],
    call_id: str | None = None,
    wait_seconds: float | None = None,
    run_async: bool = False,
) -> dict[str, Any]:
    """Validate and run `spec`, a tool the caller's scope was checked against (apps/tools/access.py:
    the /tools view's declaration, or the chat model's tool call). `{"result": …}`, or for
    long-running tools (and `run_async`) `{"job_id", "status", "status_url"}` after waiting up to
    `wait_seconds` for the job (with `"result"` too when it finished in time; call it outside a
    transaction for the job to start while it waits). Raises ApplicationError: 409 tool_disabled,
    400 validation_error, 502/504 upstream failures."""
    tool_id = spec.id
    if not spec.enabled:
        raise ApplicationError(f"Tool {tool_id} is disabled for this team", code="tool_disabled", status=409)
    if not isinstance(parameters, dict):
        raise ValidationFailed({"parameters": ["Parameters must be a JSON object."]})
    validate_parameters(spec.schema, parameters)
    builtin = BUILTINS.get(spec.id)
    if builtin is not None and builtin.needs_caller and (spec.long_running or run_async):
        raise ApplicationError(
            f"Tool {tool_id} acts within the caller's scopes and runs only synchronously; "
            "call it without ?async=true",
            code="invalid_request",
        )
    # Admitted against the plan's tool calls (402 quota_exceeded) before the tool runs; metered
    # once it has run (a job: once it is queued, in the same transaction).
    usage = Usage(
        tenant_id=int(principal.tenant.pk), api_key_id=principal.key_id, end_user=principal.end_user
    )
    hold = reserve_tool_call(usage=usage)
    if not (spec.long_running or run_async):
        try:
            result = tool_execute(
                tenant=principal.tenant, spec=spec, parameters=parameters, call_id=call_id, caller=principal
            )
        except BaseException:
            hold.release()
            raise
        meter(usage=usage, kind=Kind.TOOL, tool=spec.id, tool_calls=1, hold=hold)
        return {"result": result}
    try:
        with transaction.atomic():
            job = tool_job_create(
                tenant=principal.tenant,
                spec=spec,
                parameters=parameters,
                call_id=call_id,
                api_key_id=principal.key_id,
            )
            meter(usage=usage, kind=Kind.TOOL, tool=spec.id, tool_calls=1, hold=hold)
    finally:
        hold.release()  # a no-op once metered
    # Inside a caller's transaction the job is only sent at its commit: waiting would be in vain.
    in_transaction = transaction.get_connection().in_atomic_block
    job = _wait_for(job, 0.0 if in_transaction else (wait_seconds or 0.0))
    answer: dict[str, Any] = {
        "job_id": job.public_id,
        "status": job.status,
        "status_url": f"{get_script_prefix()}tools/jobs/{job.public_id}",  # /t/<slug>/ too
    }
    if job.status == ToolJob.Status.SUCCEEDED:
        answer["result"] = job.result
    elif job.is_finished:
        answer["error"] = job.error
    return answer


def _wait_for(job: ToolJob, seconds: float) -> ToolJob:
    job.refresh_from_db()
    deadline = time.monotonic() + max(0.0, seconds)
    pause = 0.05
    while not job.is_finished and time.monotonic() < deadline:
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 1.5, 0.5)
        job.refresh_from_db()
    return job


# --- Registering tools ------------------------------------------------------------------------


def _bool(data: dict[str, Any], name: str, default: bool, details: dict[str, list[str]]) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        details[name] = ["Must be true or false."]
        return default
    return value


def _builtin_settings(*, principal: Principal, tool_id: str, data: dict[str, Any]) -> tuple[ToolSpec, bool]:
    allowed = {"enabled", "safe", "long_running"}
    details: dict[str, list[str]] = {}
    unknown = sorted(set(data) - allowed - {"id", "description", "parameters", "schema", "example"})
    if unknown:
        details[unknown[0]] = [
            f"{tool_id} is a built-in tool: only enabled, safe and long_running can be set."
        ]
    builtin = BUILTINS[tool_id]
    row = tool_row_get(tenant=principal.tenant, tool_id=tool_id)
    values = {
        "enabled": _bool(data, "enabled", row.enabled if row else True, details),
        "safe": _bool(data, "safe", row.safe if row else builtin.safe, details),
        "long_running": _bool(data, "long_running", row.long_running if row else False, details),
    }
    if details:
        raise ValidationFailed(details)
    Tool.objects.for_tenant(principal.tenant).update_or_create(
        tenant=principal.tenant, slug=tool_id, defaults={"kind": Tool.Kind.BUILTIN, **values}
    )
    spec = tool_spec_get(tenant=principal.tenant, tool_id=tool_id)
    assert spec is not None
    return spec, False  # a built-in always exists


def tool_put(
    *, principal: Principal, tool_id: str, data: dict[str, Any]
) -> tuple[ToolSpec, bool, str | None]:
    """Create or replace a webhook tool (or change a built-in's settings). Returns the tool, whether
    it was created, and the signing secret when a new one was made (shown once)."""
    problem = tool_id_problem(tool_id)
    if problem:
        raise ValidationFailed({"id": [problem]})
    if tool_id in BUILTINS:
        spec, created = _builtin_settings(principal=principal, tool_id=tool_id, data=data)
        return spec, created, None
    fields = validated(WebhookToolSerializer, data)
    secret = fields.get("signing_secret")
    rotate = fields["rotate_secret"]
    url = fields["url"]
    values = {
        "kind": Tool.Kind.WEBHOOK,
        "description": fields.get("description", ""),
        "schema": fields["schema"],
        "example": fields.get("example"),
        "safe": fields["safe"],
        "long_running": fields["long_running"],
        "enabled": fields["enabled"],
        "timeout_seconds": fields.get("timeout_seconds"),
        "webhook_url": url,
    }
    # The secret stays deferred: replacing a tool never needs to decrypt the old one.
    row = Tool.objects.for_tenant(principal.tenant).defer("signing_secret").filter(slug=tool_id).first()
    created = row is None
    if row is None:
        count = Tool.objects.for_tenant(principal.tenant).filter(kind=Tool.Kind.WEBHOOK).count()
        if count >= settings.TOOLS_MAX_PER_TENANT:
            raise ApplicationError(
                f"This team already has {count} tools, the most allowed", code="quota_exceeded", status=409
            )
        row = Tool(tenant=principal.tenant, slug=tool_id)
    new_secret: str | None = None
    if secret is not None:
        row.signing_secret = secret
    elif created or rotate or not _has_secret(row):
        new_secret = new_signing_secret()
        row.signing_secret = new_secret
    for name, value in values.items():
        setattr(row, name, value)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise ApplicationError(
            f"Tool {tool_id} was created by another request", code="conflict", status=409
        ) from None
    saved = tool_spec_get(tenant=principal.tenant, tool_id=tool_id)
    assert saved is not None
    return saved, created, new_secret


def _has_secret(row: Tool) -> bool:
    return Tool.objects.for_tenant(row.tenant_id).filter(pk=row.pk).exclude(signing_secret="").exists()


def tool_signing_secret_rotate(*, tool: Tool) -> str:
    """A new signing secret for a webhook tool (admin action); the old one stops working now."""
    secret = new_signing_secret()
    tool.signing_secret = secret
    tool.save(update_fields=["signing_secret", "updated_at"])
    return secret


def tool_delete(*, principal: Principal, tool_id: str) -> None:
    if tool_id in BUILTINS:
        raise ApplicationError(
            f'{tool_id} is a built-in tool and cannot be deleted; disable it with PUT {{"enabled": false}}',
            code="conflict",
            status=409,
        )
    Tool.objects.for_tenant(principal.tenant).filter(slug=tool_id).delete()


# --- Jobs ---------------------------------------------------------------------------------------


def tool_job_for(*, job: ToolJob) -> ToolJob:
    """The job as it is now, repaired if its runner died."""
    return tool_job_refresh(job)


def tool_job_cancel(*, job: ToolJob) -> ToolJob:
    return _job_cancel(job=job)
