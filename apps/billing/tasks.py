"""Celery beat's billing work: teams whose grace period is over go down to the free plan."""

from __future__ import annotations

from celery import shared_task

from apps.billing.subscriptions import billing_end_expired_grace_periods


@shared_task(name="billing.end_expired_grace_periods")
def end_expired_grace_periods() -> list[int]:
    return billing_end_expired_grace_periods()
