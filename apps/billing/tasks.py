"""Celery beat's billing work: the usage ledger goes to Stripe Billing as meter events (whatever
Stripe could not take waits for the next run); teams whose grace period is over go down to the
free plan."""

from __future__ import annotations

import logging

from celery import shared_task

from apps.billing.reporting import StripeNotConfigured, report_usage
from apps.billing.subscriptions import billing_end_expired_grace_periods

logger = logging.getLogger("slop.billing")


@shared_task(name="billing.report_usage")
def report_usage_to_stripe() -> dict[str, object]:
    try:
        result = report_usage()
    except StripeNotConfigured as exc:
        logger.info("%s", exc)
        return {"status": "not_configured"}
    if result.stopped or result.failed:
        logger.warning(
            "usage report: %s sent, %s batch(es) waiting; %s",
            result.sent,
            result.pending,
            result.stopped or result.failed,
        )
    return {
        "status": "ok" if not (result.stopped or result.failed) else "backlog",
        "sent": result.sent,
        "already_counted": result.already_counted,
        "pending": result.pending,
    }


@shared_task(name="billing.end_expired_grace_periods")
def end_expired_grace_periods() -> list[int]:
    return billing_end_expired_grace_periods()
