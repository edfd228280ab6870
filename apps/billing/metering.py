"""Metering: each billable unit counted once, where it happens.

`meter()` writes one ledger row (UsageEvent) and adds it to the period's counters (the tenant's,
the key's, the end user's) in ONE SQL statement, and releases the quota hold the request took
(apps/billing/quotas.py). Call it inside the transaction that does the work (a chat exchange's
store, a job's outcome), so the work and its meter commit or roll back together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from apps.billing.accounts import limits_for
from apps.billing.models import UsageCounter, UsageEvent

Scope = UsageCounter.Scope
Kind = UsageEvent.Kind


@dataclass(frozen=True)
class Usage:
    """Who used something: the tenant, its key, the end user (X-SLOP-User), the agent."""

    tenant_id: int
    api_key_id: int | None = None
    end_user: str = ""
    agent: str = ""

    def subjects(self) -> list[tuple[str, str]]:
        """The counters this usage adds to."""
        found = [(Scope.TENANT.value, "")]
        if self.api_key_id is not None:
            found.append((Scope.KEY.value, str(self.api_key_id)))
        if self.end_user:
            found.append((Scope.USER.value, self.end_user))
        return found


# Reservations are seen by every other request as soon as they commit, but are not worth a disk
# flush: one lost in a crash is forgotten by the hold timeout anyway. So a reservation statement
# that is its own transaction asks for an asynchronous commit (set_config(..., true) lasts until
# that commit) and costs one round trip; inside a caller's transaction it leaves the caller's
# durability alone.
ASYNC_COMMIT = (
    "(SELECT set_config('synchronous_commit', CASE WHEN %(own)s THEN 'off' "
    "ELSE current_setting('synchronous_commit') END, true)) AS async_commit"
)


@dataclass
class Hold:
    """What an admitted request reserved on its counters, released when it is metered (or
    abandoned). `rows` are the (scope, subject) counters that hold it."""

    usage: Usage
    period_start: date
    tokens: int = 0
    tool_calls: int = 0
    rows: list[tuple[str, str]] = field(default_factory=list)
    done: bool = False

    def release(self) -> None:
        """Gives the reservation back without metering anything (the request failed); idempotent."""
        if self.done or not self.rows:
            self.done = True
            return
        self.done = True
        keys = [f"{scope}:{subject}" for scope, subject in self.rows]
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE billing_usagecounter SET "  # noqa: S608 (constants only)
                "reserved_tokens = GREATEST(reserved_tokens - %(tokens)s, 0), "
                "reserved_tool_calls = GREATEST(reserved_tool_calls - %(calls)s, 0) "
                f"FROM {ASYNC_COMMIT} WHERE tenant_id = %(tenant)s AND period_start = %(period)s "
                "AND scope || ':' || subject = ANY(%(keys)s)",
                {
                    "tokens": self.tokens,
                    "calls": self.tool_calls,
                    "tenant": self.usage.tenant_id,
                    "period": self.period_start,
                    "keys": keys,
                    "own": not connection.in_atomic_block,
                },
            )


_COLUMNS = (
    "tenant_id, created_at, kind, api_key_id, end_user, agent, model, tool, "
    "input_tokens, output_tokens, tool_calls, job_seconds"
)
_METER_SQL = (
    f"WITH ledger AS (INSERT INTO billing_usageevent ({_COLUMNS}) "  # noqa: S608 (constants only)
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)) "
    "INSERT INTO billing_usagecounter AS c (tenant_id, period_start, scope, subject, input_tokens, "
    "output_tokens, tool_calls, job_seconds, reserved_tokens, reserved_tool_calls, updated_at) "
    "VALUES {rows} "
    "ON CONFLICT (tenant_id, period_start, scope, subject) DO UPDATE SET "
    "input_tokens = c.input_tokens + EXCLUDED.input_tokens, "
    "output_tokens = c.output_tokens + EXCLUDED.output_tokens, "
    "tool_calls = c.tool_calls + EXCLUDED.tool_calls, "
    "job_seconds = c.job_seconds + EXCLUDED.job_seconds, "
    "reserved_tokens = GREATEST(c.reserved_tokens - CASE WHEN c.scope || ':' || c.subject = ANY(%s) "
    "THEN %s ELSE 0 END, 0), "
    "reserved_tool_calls = GREATEST(c.reserved_tool_calls - CASE WHEN c.scope || ':' || c.subject "
    "= ANY(%s) THEN %s ELSE 0 END, 0), "
    "updated_at = EXCLUDED.updated_at"
)
_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, 0, 0, %s)"


def meter(
    *,
    usage: Usage,
    kind: str,
    model: str = "",
    tool: str = "",
    input_tokens: int = 0,
    output_tokens: int = 0,
    tool_calls: int = 0,
    job_seconds: int = 0,
    hold: Hold | None = None,
    at: datetime | None = None,
) -> None:
    """Records one billable event and releases `hold` (the reservation the request was admitted
    with), in one statement. Nothing to count and nothing held: no write at all."""
    if not (input_tokens or output_tokens or tool_calls or job_seconds):
        if hold is not None:
            hold.release()
        return
    now = at or timezone.now()
    period_start = hold.period_start if hold is not None else limits_for(usage.tenant_id).period_start
    subjects = usage.subjects()
    params: list[Any] = [
        usage.tenant_id,
        now,
        kind,
        usage.api_key_id,
        usage.end_user,
        usage.agent,
        model,
        tool,
        input_tokens,
        output_tokens,
        tool_calls,
        job_seconds,
    ]
    for scope, subject in subjects:
        params += [
            usage.tenant_id,
            period_start,
            scope,
            subject,
            input_tokens,
            output_tokens,
            tool_calls,
            job_seconds,
            now,
        ]
    held = hold is not None and not hold.done
    keys = [f"{scope}:{subject}" for scope, subject in hold.rows] if hold is not None and held else []
    params += [keys, hold.tokens if hold else 0, keys, hold.tool_calls if hold else 0]
    sql = _METER_SQL.format(rows=", ".join([_ROW] * len(subjects)))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    if hold is not None:
        hold.done = True
