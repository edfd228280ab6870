"""Running one tool call, whatever its kind. No scope checks here: callers check first."""

from __future__ import annotations

import time
from typing import Any

from apps.core.crypto import DecryptionError
from apps.core.errors import ApplicationError
from apps.core.ids import new_id
from apps.core.observability.genai import tool_call_recorded
from apps.tenants.authentication import Principal
from apps.tenants.models import Tenant
from apps.tools.builtins import BUILTINS
from apps.tools.models import Tool
from apps.tools.selectors import tool_row_get
from apps.tools.spec import ToolSpec
from apps.tools.webhooks import call_webhook


def tool_execute(
    *,
    tenant: Tenant | int,
    spec: ToolSpec,
    parameters: dict[str, Any],
    call_id: str | None,
    caller: Principal | None = None,
) -> Any:
    """The tool's result; ApplicationError (400 for bad input, 502/504 upstream) otherwise.
    `caller` is the principal of a synchronous call (None in a background job)."""
    started, ok = time.perf_counter(), False
    try:
        result = _run(tenant=tenant, spec=spec, parameters=parameters, call_id=call_id, caller=caller)
        ok = True
        return result
    finally:
        builtin = spec.kind == Tool.Kind.BUILTIN and spec.id in BUILTINS
        tool_call_recorded(spec.id, builtin=builtin, seconds=time.perf_counter() - started, ok=ok)


def _run(
    *,
    tenant: Tenant | int,
    spec: ToolSpec,
    parameters: dict[str, Any],
    call_id: str | None,
    caller: Principal | None,
) -> Any:
    builtin = BUILTINS.get(spec.id)
    if spec.kind == Tool.Kind.BUILTIN and builtin is not None:
        if builtin.needs_caller and caller is None:
            raise ApplicationError(
                f"Tool {spec.id} acts within the caller's scopes and cannot run as a background job",
                code="invalid_request",
                status=400,
            )
        return builtin.run(parameters, caller)
    try:
        row = tool_row_get(tenant=tenant, tool_id=spec.id)
    except DecryptionError:
        raise ApplicationError(
            f"Tool {spec.id}'s signing secret cannot be decrypted (was SLOP_ENCRYPTION_KEY changed?); "
            f'rotate it with PUT /tools/{spec.id} {{"rotate_secret": true}}',
            code="tool_not_configured",
            status=503,
        ) from None
    if row is None or row.kind != Tool.Kind.WEBHOOK:
        raise ApplicationError(f"Tool {spec.id} no longer exists", code="not_found", status=404)
    if not row.webhook_url or not row.signing_secret:
        raise ApplicationError(
            f"Tool {spec.id} has no webhook URL configured", code="tool_not_configured", status=503
        )
    return call_webhook(
        url=row.webhook_url,
        secret=row.signing_secret,
        tool_id=spec.id,
        call_id=call_id or new_id("call"),
        parameters=parameters,
        timeout=spec.timeout_seconds,
    )
