"""Quotas that hold: a billable request is admitted, before any upstream call, only while what its
tenant, key and end user have used — plus what requests already admitted have reserved — is
below their limits. Past one: `402 quota_exceeded` (PROTOCOL.md §12).

Admission is one statement per limited counter (`INSERT … ON CONFLICT DO UPDATE … WHERE`), which
takes the counter's row lock: concurrent requests are admitted one after another, each seeing the
reservations of those before it. A request reserves what it may use (a chat: its input estimate
plus its output allowance; a tool call: one call); so at the limit one request gets in and the
rest are refused, and the most a tenant can go past its limit is one request's worth.

The limits: the plan's included tokens and tool calls (when its overage is off), the key's own
monthly token cap (ApiKey.monthly_token_cap), and the tenant's cap per end user
(BillingAccount.end_user_monthly_token_cap).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.billing.accounts import Limits, limits_for
from apps.billing.metering import ASYNC_COMMIT, Hold, Scope, Usage
from apps.core.errors import ApplicationError

_RESERVE_SQL = (
    "INSERT INTO billing_usagecounter AS c (tenant_id, period_start, scope, subject, input_tokens, "  # noqa: S608 (constants only)
    "output_tokens, tool_calls, job_seconds, reserved_tokens, reserved_tool_calls, reserved_since, "
    "updated_at) SELECT %(tenant)s, %(period)s, %(scope)s, %(subject)s, 0, 0, 0, 0, %(tokens)s, "
    f"%(calls)s, %(now)s, %(now)s FROM {ASYNC_COMMIT} "
    "ON CONFLICT (tenant_id, period_start, scope, subject) DO UPDATE SET "
    "reserved_tokens = (CASE WHEN c.reserved_since < %(stale)s THEN 0 ELSE c.reserved_tokens END) "
    "+ EXCLUDED.reserved_tokens, "
    "reserved_tool_calls = (CASE WHEN c.reserved_since < %(stale)s THEN 0 "
    "ELSE c.reserved_tool_calls END) + EXCLUDED.reserved_tool_calls, "
    "reserved_since = CASE WHEN c.reserved_since IS NULL OR c.reserved_since < %(stale)s "
    "OR (c.reserved_tokens = 0 AND c.reserved_tool_calls = 0) THEN EXCLUDED.reserved_since "
    "ELSE c.reserved_since END "
    "WHERE {used} + (CASE WHEN c.reserved_since < %(stale)s THEN 0 ELSE {reserved} END) < %(limit)s "
    "RETURNING c.id"
)
_TOKENS = _RESERVE_SQL.format(used="c.input_tokens + c.output_tokens", reserved="c.reserved_tokens")
_CALLS = _RESERVE_SQL.format(used="c.tool_calls", reserved="c.reserved_tool_calls")

_WHO = {
    Scope.TENANT.value: "This team",
    Scope.KEY.value: "This API key",
    Scope.USER.value: "This end user",
}


def quota_exceeded(*, scope: str, unit: str, limit: int, used: int, plan: str) -> ApplicationError:
    whose = {
        Scope.TENANT.value: f"its {plan!r} plan includes",
        Scope.KEY.value: "its monthly cap allows",
        Scope.USER.value: "the team allows each end user",
    }[scope]
    what = "LLM tokens" if unit == "tokens" else "tool calls"
    extra: dict[str, object] = {"limit": limit, "used": used, "scope": scope, "unit": unit}
    if scope == Scope.TENANT.value and settings.SLOP_BILLING_UPGRADE_URL:
        extra["upgrade_url"] = settings.SLOP_BILLING_UPGRADE_URL
    return ApplicationError(
        f"Quota exceeded: {_WHO[scope].lower()} has used {used:,} of the {limit:,} {what} {whose} "
        "this billing period",
        code="quota_exceeded",
        status=402,
        extra=extra,
    )


def _token_limits(limits: Limits, usage: Usage, key_cap: int | None) -> list[tuple[str, str, int]]:
    found = []
    if limits.tokens is not None:
        found.append((Scope.TENANT.value, "", limits.tokens))
    if key_cap is not None and usage.api_key_id is not None:
        found.append((Scope.KEY.value, str(usage.api_key_id), key_cap))
    if limits.end_user_tokens is not None and usage.end_user:
        found.append((Scope.USER.value, usage.end_user, limits.end_user_tokens))
    return found


def _used(usage: Usage, limits: Limits, scope: str, subject: str, unit: str) -> int:
    column = "input_tokens + output_tokens" if unit == "tokens" else "tool_calls"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM billing_usagecounter WHERE tenant_id = %s AND period_start = %s "  # noqa: S608
            "AND scope = %s AND subject = %s",
            [usage.tenant_id, limits.period_start, scope, subject],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _admit(usage: Usage, limits: Limits, checks: list[tuple[str, str, int]], unit: str, amount: int) -> Hold:
    hold = Hold(
        usage=usage,
        period_start=limits.period_start,
        tokens=amount if unit == "tokens" else 0,
        tool_calls=amount if unit == "tool_calls" else 0,
    )
    if not checks:
        return hold
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SLOP_BILLING_HOLD_SECONDS)
    sql = _TOKENS if unit == "tokens" else _CALLS
    # Several counters: all of them or none (the atomic block undoes the ones already reserved).
    own = not connection.in_atomic_block
    with transaction.atomic() if len(checks) > 1 else contextlib.nullcontext():
        for scope, subject, limit in checks:
            admitted = False
            if limit > 0:
                with connection.cursor() as cursor:
                    cursor.execute(
                        sql,
                        {
                            "tenant": usage.tenant_id,
                            "period": limits.period_start,
                            "scope": scope,
                            "subject": subject,
                            "tokens": hold.tokens,
                            "calls": hold.tool_calls,
                            "now": now,
                            "stale": stale,
                            "limit": limit,
                            "own": own,
                        },
                    )
                    admitted = cursor.fetchone() is not None
            if not admitted:
                used = _used(usage, limits, scope, subject, unit)
                raise quota_exceeded(scope=scope, unit=unit, limit=limit, used=used, plan=limits.plan_slug)
            hold.rows.append((scope, subject))
    return hold


def reserve_tokens(*, usage: Usage, estimate: int, key_cap: int | None = None) -> Hold:
    """Admits a request that may use about `estimate` tokens, or raises 402 quota_exceeded. The
    hold goes to `meter(..., hold=)` when the request is done, or `hold.release()` if it fails."""
    limits = limits_for(usage.tenant_id)
    checks = _token_limits(limits, usage, key_cap)
    return _admit(usage, limits, checks, "tokens", max(1, estimate))


def reserve_tool_call(*, usage: Usage) -> Hold:
    """Admits one tool call, or raises 402 quota_exceeded."""
    limits = limits_for(usage.tenant_id)
    checks = [(Scope.TENANT.value, "", limits.tool_calls)] if limits.tool_calls is not None else []
    return _admit(usage, limits, checks, "tool_calls", 1)


def estimate_tokens(texts: list[str], max_output_tokens: int | None) -> int:
    """What an exchange may use: its input (about four characters a token) plus what it may write."""
    characters = sum(len(text) for text in texts)
    output = max_output_tokens or settings.SLOP_BILLING_RESERVE_OUTPUT_TOKENS
    return characters // 4 + 1 + output
