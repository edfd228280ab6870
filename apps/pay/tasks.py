"""Celery beat runs this every few minutes: pending payments are settled with Stripe, never lost."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from apps.pay.services import payment_reconcile, payments_to_reconcile

logger = logging.getLogger(__name__)


@shared_task(name="pay.reconcile_pending_payments")
def reconcile_pending_payments() -> dict[str, str]:
    results: dict[str, str] = {}
    for payment in payments_to_reconcile(older_than_seconds=settings.SLOP_PAY_RECONCILE_AFTER_SECONDS):
        try:
            results[payment.id] = payment_reconcile(payment=payment)
        except Exception:  # one bad row must not stop the others; it is retried next run
            logger.exception("Reconciling %s failed", payment.id)
            results[payment.id] = "error"
    return results
