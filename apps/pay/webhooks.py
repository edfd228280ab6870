"""Stripe's webhook: verify the signature, then apply each event exactly once.

The StripeEvent row (unique per account and Stripe event id) is inserted in the same transaction as
the change it causes. A second delivery of the same event fails that insert and is acknowledged
without touching anything; two deliveries racing each other serialise on the unique constraint.
Events may arrive in any order: `payment_apply_state` keeps the final or newest state.

Accounts: `/pay/webhook` is the platform's Stripe account (its secret in settings), and
`/pay/webhook/<tenant slug>` a tenant's own account (its secret in PaymentSettings). Each endpoint
reaches only the payments charged through its account, and its event ids are its own.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.stripe_webhooks import stripe_event_verified
from apps.pay.gateway import PaymentIntentState, not_configured, state_from_intent
from apps.pay.models import Payment, PaymentStatus, StripeEvent
from apps.pay.services import payment_apply_state
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

PAYMENT_INTENT_EVENTS = {
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.canceled",
}
CHARGE_REFUND_EVENTS = {"charge.refunded"}


def verify_event(*, payload: bytes, signature: str | None, secret: str | None) -> dict[str, Any]:
    """The event, if Stripe (holding `secret`) signed exactly these bytes recently; else 400."""
    if not secret:
        raise not_configured()
    return stripe_event_verified(payload=payload, signature=signature, secret=secret)


def _find_payment(obj: dict[str, Any], intent_id: str, tenant: Tenant | None) -> Payment | None:
    if tenant is not None:
        # A tenant's own account: its payments charged with its own key, nobody else's.
        base = Payment.objects.for_tenant(tenant).filter(uses_tenant_key=True)
    else:
        # Crossing tenants on purpose: the platform's account charged for every tenant, and
        # PaymentIntent ids are unique at Stripe. Only payments charged with the platform's key.
        base = Payment.objects.unscoped().filter(uses_tenant_key=False)
    rows = base.select_for_update()
    if intent_id:
        found = rows.filter(stripe_payment_intent_id=intent_id).first()
        if found is not None:
            return found
    metadata = obj.get("metadata") or {}
    transaction_id = metadata.get("slop_transaction_id") if isinstance(metadata, dict) else None
    tenant_id = str(metadata.get("slop_tenant", "")) if isinstance(metadata, dict) else ""
    if isinstance(transaction_id, str) and transaction_id and tenant_id.isdigit():
        found = rows.filter(pk=transaction_id, tenant_id=int(tenant_id)).first()
        if found is not None and found.stripe_payment_intent_id in ("", intent_id):
            return found
    return None


def _state_for(event_type: str, obj: dict[str, Any]) -> tuple[str, PaymentIntentState] | None:
    """(PaymentIntent id, the state the event reports), or None for events we do not act on."""
    if event_type in PAYMENT_INTENT_EVENTS:
        state = state_from_intent(obj)
        if event_type == "payment_intent.payment_failed" and state.status != PaymentStatus.FAILED:
            state = PaymentIntentState(
                payment_intent_id=state.payment_intent_id,
                stripe_status=state.stripe_status,
                status=PaymentStatus.FAILED,
                failure_code=state.failure_code or "payment_failed",
                failure_reason=state.failure_reason or "The payment failed.",
                charge_id=state.charge_id,
            )
        return state.payment_intent_id, state
    if event_type in CHARGE_REFUND_EVENTS and obj.get("refunded") is True:
        intent_id = str(obj.get("payment_intent") or "")
        return intent_id, PaymentIntentState(
            payment_intent_id=intent_id,
            stripe_status="succeeded",
            status=PaymentStatus.REFUNDED,
            charge_id=str(obj.get("id") or ""),
            receipt_url=str(obj.get("receipt_url") or ""),
            refunded=True,
        )
    return None


def stripe_event_apply(*, event: dict[str, Any], tenant: Tenant | None = None) -> str:
    """Apply a verified event once; returns what happened ("applied", "duplicate", "ignored: …")."""
    event_id, event_type = event["id"], event["type"]
    created = event.get("created")
    data = event.get("data") or {}
    obj = data.get("object") if isinstance(data, dict) else None
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = StripeEvent.objects.create(
                    event_id=event_id,
                    type=event_type[:100],
                    tenant=tenant,
                    created=created if isinstance(created, int) else 0,
                )
        except IntegrityError:
            return "duplicate"
        outcome = "ignored: event type not used"
        found = _state_for(event_type, obj) if isinstance(obj, dict) else None
        if found is not None:
            intent_id, state = found
            payment = _find_payment(obj or {}, intent_id, tenant)
            if payment is None:
                outcome = "ignored: no payment of ours"
            else:
                changed = payment_apply_state(payment=payment, state=state, observed_at=row.created)
                row.payment = payment
                outcome = f"applied: {payment.status}" if changed else f"kept: {payment.status}"
        row.processed_at = timezone.now()
        row.outcome = outcome
        row.save(update_fields=["processed_at", "outcome", "payment"])
        logger.info("Stripe event %s (%s): %s", event_id, event_type, outcome)
        return outcome


def webhook_secret_for(tenant: Tenant | None) -> str | None:
    if tenant is None:
        return settings.STRIPE_WEBHOOK_SECRET
    from apps.core.crypto import decrypt_text_or_none
    from apps.pay.models import PaymentSettings

    row = PaymentSettings.objects.for_tenant(tenant).first()
    return decrypt_text_or_none(row.stripe_webhook_secret_encrypted) if row else None
