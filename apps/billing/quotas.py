"""Quotas that hold: a billable request is admitted, before any upstream call, only while what its
tenant, key and end user have used — plus what requests already admitted have reserved — is
below their limits. Past one: `402 quota_exceeded` (PROTOCOL.md §12).

Admission is one statement for all of a request's limited counters (`INSERT … ON CONFLICT DO
UPDATE … WHERE`, one row per counter), which takes the counters' row locks: concurrent requests are
admitted one after another, each seeing the reservations of those before it. A request reserves
what it may use (a chat: its input estimate plus its output allowance; a tool call: one call); so
at the limit one request gets in and the rest are refused, and the most a tenant can go past its
limit is one request's worth. When one of its counters refuses, the others give the reservation
back at once (a refused request may, for that moment, make a concurrent one at another of those
limits refused too: never admitted past one).

The limits: the plan's included tokens and tool calls (when its overage is off), the key's own
monthly token cap (ApiKey.monthly_token_cap), and the tenant's cap per end user
(BillingAccount.end_user_monthly_token_cap).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.billing.accounts import Limits, limits_for
from apps.billing.metering import ASYNC_COMMIT, Hold, Scope, Usage
from apps.core.errors import ApplicationError

# One statement admits a request on all its limited counters (the tenant's, its key's, its end
# user's: one row each, proposed together). A row not yet made this period is inserted with the
# reservation (nothing used yet, so under any limit above 0); an existing row takes it only while
# used + reserved is below that row's limit (`{limits}`: a CASE on the row's scope). RETURNING
# names the rows that took it; when one did not, the others give it back (_admit).
_RESERVE_SQL = (
    "INSERT INTO billing_usagecounter AS c (tenant_id, period_start, scope, subject, input_tokens, "  # noqa: S608 (constants only)
    "output_tokens, tool_calls, job_seconds, reserved_tokens, reserved_tool_calls, reserved_since, "
    "updated_at) SELECT %(tenant)s, %(period)s, v.scope, v.subject, 0, 0, 0, 0, %(tokens)s, "
    "%(calls)s, %(now)s, %(now)s FROM (VALUES {rows}) AS v(scope, subject) "
    f"CROSS JOIN {ASYNC_COMMIT} "
    "ON CONFLICT (tenant_id, period_start, scope, subject) DO UPDATE SET "
    "reserved_tokens = (CASE WHEN c.reserved_since < %(stale)s THEN 0 ELSE c.reserved_tokens END) "
    "+ EXCLUDED.reserved_tokens, "
    "reserved_tool_calls = (CASE WHEN c.reserved_since < %(stale)s THEN 0 "
    "ELSE c.reserved_tool_calls END) + EXCLUDED.reserved_tool_calls, "
    "reserved_since = CASE WHEN c.reserved_since IS NULL OR c.reserved_since < %(stale)s "
    "OR (c.reserved_tokens = 0 AND c.reserved_tool_calls = 0) THEN EXCLUDED.reserved_since "
    "ELSE c.reserved_since END "
    "WHERE {used} + (CASE WHEN c.reserved_since < %(stale)s THEN 0 ELSE {reserved} END) < {limits} "
    "RETURNING c.scope"
)
_USED = {"tokens": "c.input_tokens + c.output_tokens", "tool_calls": "c.tool_calls"}
_RESERVED = {"tokens": "c.reserved_tokens", "tool_calls": "c.reserved_tool_calls"}


def _reserve_sql(unit: str, count: int) -> str:
    rows = ", ".join(f"(%(scope{i})s, %(subject{i})s)" for i in range(count))
    limits = "CASE c.scope " + " ".join(f"WHEN %(scope{i})s THEN %(limit{i})s" for i in range(count)) + " END"
    return _RESERVE_SQL.format(rows=rows, used=_USED[unit], reserved=_RESERVED[unit], limits=limits)


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
    for scope, subject, limit in checks:
        if limit <= 0:  # nothing allowed at all: no statement needed to know
            raise _refusal(usage, limits, scope, subject, unit, limit)
    now = timezone.now()
    params: dict[str, Any] = {
        "tenant": usage.tenant_id,
        "period": limits.period_start,
        "tokens": hold.tokens,
        "calls": hold.tool_calls,
        "now": now,
        "stale": now - timedelta(seconds=settings.SLOP_BILLING_HOLD_SECONDS),
        "own": not connection.in_atomic_block,
    }
    for index, (scope, subject, limit) in enumerate(checks):
        params.update({f"scope{index}": scope, f"subject{index}": subject, f"limit{index}": limit})
    with connection.cursor() as cursor:
        cursor.execute(_reserve_sql(unit, len(checks)), params)
        admitted = {row[0] for row in cursor.fetchall()}
    hold.rows = [(scope, subject) for scope, subject, _ in checks if scope in admitted]
    refused = next(
        ((scope, subject, limit) for scope, subject, limit in checks if scope not in admitted), None
    )
    if refused is not None:
        # All or none: the counters that took the reservation give it back (the refusal path only,
        # so admission stays one round trip).
        hold.release()
        scope, subject, limit = refused
        raise _refusal(usage, limits, scope, subject, unit, limit)
    return hold


def _refusal(
    usage: Usage, limits: Limits, scope: str, subject: str, unit: str, limit: int
) -> ApplicationError:
    used = _used(usage, limits, scope, subject, unit)
    return quota_exceeded(scope=scope, unit=unit, limit=limit, used=used, plan=limits.plan_slug)


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
