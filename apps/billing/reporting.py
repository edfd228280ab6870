"""Usage to Stripe Billing: ledger rows become meter events, sent once.

1. `batch_unreported()`: for each team with a Stripe customer, the ledger rows not yet in a batch
   become one MeterReport (their sums per unit), in one transaction that links the rows to it. A
   row is in at most one batch, ever.
2. `send_pending()`: each unsent unit of each batch goes to `POST /v1/billing/meter_events` with
   the batch's fixed identifier. Stripe counts an identifier once (a second send is refused as
   `resource_already_exists`, which means it was counted), so a retry after a timeout, a crash
   or an outage never counts twice. A unit Stripe could not take stays in the backlog for the
   next run; an outage stops the run (the backlog waits, nothing is lost).
3. `reconcile()`: what we sent against Stripe's meter event summaries for the same window.

The beat task (billing.report_usage) and `manage.py billing_report` run 1 and 2 (and 3 on request).
Teams without a Stripe customer are not reported (nothing bills them); their rows stay unbatched.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from apps.billing import stripe_api
from apps.billing.models import BillingAccount, MeterReport, UsageEvent
from apps.core.ids import new_id

logger = logging.getLogger("slop.billing")

UNITS = ("input_tokens", "output_tokens", "tool_calls", "job_seconds")
UNIT_NAMES = {
    "input_tokens": "LLM input tokens",
    "output_tokens": "LLM output tokens",
    "tool_calls": "tool calls",
    "job_seconds": "long-running job seconds",
}


class StripeNotConfigured(Exception):
    def __init__(self) -> None:
        super().__init__(
            "Stripe is not configured: set STRIPE_SECRET_KEY (the platform's sk_live_… or sk_test_… "
            "key) to report usage to Stripe Billing. Nothing was sent; the usage stays in the ledger "
            "until it can be."
        )


def event_name(unit: str) -> str:
    return f"{settings.SLOP_BILLING_METER_EVENT_PREFIX}{unit}"


def stripe_client() -> stripe.StripeClient:
    """The platform account's client (apps/billing/stripe_api.py); StripeNotConfigured without a key."""
    if not settings.STRIPE_SECRET_KEY:
        raise StripeNotConfigured()
    return stripe_api.stripe_client()


def _accounts_with_customers() -> list[BillingAccount]:
    # Operators' work across every team: the named escape hatch.
    return list(BillingAccount.objects.unscoped().exclude(stripe_customer_id="").order_by("tenant_id"))


def batch_unreported(*, limit: int | None = None) -> list[MeterReport]:
    """Puts every team's unbatched ledger rows into batches (at most `limit` rows a batch)."""
    size = limit or settings.SLOP_BILLING_REPORT_BATCH_ROWS
    made: list[MeterReport] = []
    for account in _accounts_with_customers():
        while True:
            report = _batch_one(account, size)
            if report is None:
                break
            made.append(report)
    return made


def _batch_one(account: BillingAccount, size: int) -> MeterReport | None:
    tenant_id = account.tenant_id
    with transaction.atomic():
        rows = UsageEvent.objects.for_tenant(tenant_id).filter(report__isnull=True)
        # Locked (skipping rows another reporter holds), so two reporters never batch a row twice.
        ids = list(
            rows.select_for_update(skip_locked=True).order_by("id").values_list("id", flat=True)[:size]
        )
        if not ids:
            return None
        chosen = UsageEvent.objects.for_tenant(tenant_id).filter(id__in=ids)
        sums = chosen.aggregate(**{unit: Sum(unit) for unit in UNITS})
        quantities = {unit: int(sums[unit] or 0) for unit in UNITS if sums[unit]}
        report = MeterReport.objects.create(
            tenant_id=tenant_id,
            identifier=new_id("mr"),
            stripe_customer_id=account.stripe_customer_id,
            quantities=quantities,
            sent_at=None if quantities else timezone.now(),
        )
        chosen.update(report=report)
    return report


@dataclass
class SendResult:
    sent: int = 0  # meter events Stripe accepted now
    already_counted: int = 0  # identifiers Stripe had counted before (a retry)
    failed: dict[str, str] = field(default_factory=dict)  # event identifier → why
    stopped: str = ""  # why the run stopped early (Stripe unreachable)
    pending: int = 0  # batches still to send


def send_pending(client: stripe.StripeClient) -> SendResult:
    result = SendResult()
    reports = MeterReport.objects.unscoped().filter(sent_at=None).order_by("id")
    for report in reports:
        if result.stopped:
            break
        _send_report(client, report, result)
    result.pending = MeterReport.objects.unscoped().filter(sent_at=None).count()
    return result


def _send_report(client: stripe.StripeClient, report: MeterReport, result: SendResult) -> None:
    errors: list[str] = []
    for unit, quantity in report.quantities.items():
        if unit in report.sent_units:
            continue
        identifier = report.event_identifier(unit)
        try:
            client.v1.billing.meter_events.create(
                params={
                    "event_name": event_name(unit),
                    "identifier": identifier,
                    "payload": {"stripe_customer_id": report.stripe_customer_id, "value": str(quantity)},
                    "timestamp": int(report.created_at.timestamp()),
                }
            )
            result.sent += 1
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_already_exists":
                errors.append(f"{unit}: {exc.user_message or exc}")
                result.failed[identifier] = str(exc.user_message or exc)
                continue
            result.already_counted += 1
        except stripe.StripeError as exc:  # unreachable, 5xx, auth: stop, keep the backlog
            errors.append(f"{unit}: {exc.user_message or exc}")
            result.stopped = f"Stripe did not take {identifier}: {exc.user_message or exc}"
            break
        report.sent_units = [*report.sent_units, unit]
    report.attempts += 1
    report.last_error = "; ".join(errors)
    if set(report.quantities) <= set(report.sent_units):
        report.sent_at = timezone.now()
    report.save(update_fields=["sent_units", "attempts", "last_error", "sent_at"])


def report_usage(client: stripe.StripeClient | None = None) -> SendResult:
    """What the beat task and `manage.py billing_report` do: batch, then send the backlog."""
    client = client or stripe_client()
    batch_unreported()
    return send_pending(client)


def ensure_meters(client: stripe.StripeClient) -> dict[str, str]:
    """The Stripe meter for each unit (made when missing): event name → meter id."""
    found = {
        meter.event_name: meter.id
        for meter in client.v1.billing.meters.list(
            params={"status": "active", "limit": 100}
        ).auto_paging_iter()
    }
    for unit in UNITS:
        name = event_name(unit)
        if name not in found:
            meter = client.v1.billing.meters.create(
                params={
                    "display_name": f"SLOP {UNIT_NAMES[unit]}",
                    "event_name": name,
                    "default_aggregation": {"formula": "sum"},
                    "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
                    "value_settings": {"event_payload_key": "value"},
                }
            )
            found[name] = meter.id
    return found


@dataclass(frozen=True)
class Discrepancy:
    tenant_id: int
    customer: str
    unit: str
    ours: int
    stripes: int


def reconcile(client: stripe.StripeClient, *, start: datetime, end: datetime) -> list[Discrepancy]:
    """Every (team, unit) whose sent usage in [start, end) differs from Stripe's meter event
    summaries for that window (widened to whole minutes, as Stripe asks)."""
    start_ts = int(start.timestamp()) // 60 * 60
    end_ts = math.ceil(end.timestamp() / 60) * 60
    meters = {
        meter.event_name: meter.id
        for meter in client.v1.billing.meters.list(params={"limit": 100}).auto_paging_iter()
    }
    found: list[Discrepancy] = []
    for account in _accounts_with_customers():
        sent = MeterReport.objects.for_tenant(account.tenant_id).filter(
            stripe_customer_id=account.stripe_customer_id,
            created_at__gte=datetime.fromtimestamp(start_ts, tz=start.tzinfo),
            created_at__lt=datetime.fromtimestamp(end_ts, tz=start.tzinfo),
        )
        ours = dict.fromkeys(UNITS, 0)
        for report in sent:
            for unit in report.sent_units:
                ours[unit] += int(report.quantities.get(unit, 0))
        for unit in UNITS:
            meter_id = meters.get(event_name(unit))
            stripes = 0
            if meter_id is not None:
                summaries = client.v1.billing.meters.event_summaries.list(
                    meter_id,
                    params={
                        "customer": account.stripe_customer_id,
                        "start_time": start_ts,
                        "end_time": end_ts,
                    },
                )
                stripes = int(sum(summary.aggregated_value for summary in summaries.auto_paging_iter()))
            if stripes != ours[unit]:
                found.append(
                    Discrepancy(account.tenant_id, account.stripe_customer_id, unit, ours[unit], stripes)
                )
    return found
