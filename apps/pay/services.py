"""Writes: create a payment (idempotently), apply what Stripe says, refund, reconcile.

The order of operations is the point of this module:
1. the payment row (status `pending`, with its idempotency key) is committed before Stripe is called,
   so a crash or an outage leaves a row to reconcile, never a charge we do not know about;
2. Stripe is called while that row is locked (`SELECT … FOR UPDATE`), so concurrent requests with
   the same key wait for the first and then answer what it got: one charge;
3. every observation of Stripe's state (API answer, webhook, refresh) goes through
   `payment_apply_state`, which never lets an older or weaker state overwrite a newer or final one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import ApplicationError, NotFound
from apps.core.ids import new_id
from apps.pay import gateway
from apps.pay.gateway import PaymentIntentState, StripeRejected, StripeUnavailable
from apps.pay.models import FINAL_STATUSES, Payment, PaymentStatus
from apps.pay.validation import PaymentRequest
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaymentOutcome:
    payment: Payment
    replayed: bool = False
    # Set when Stripe could not be reached: the payment is stored, pending, and will be reconciled.
    upstream_error: StripeUnavailable | None = None


def _may_apply(payment: Payment, new_status: str, observed_at: int) -> bool:
    current = payment.status
    if current == PaymentStatus.REFUNDED or current == PaymentStatus.CANCELED:
        return False
    if current == PaymentStatus.SUCCESS:
        return new_status == PaymentStatus.REFUNDED
    if new_status in FINAL_STATUSES:
        return True
    # Between non-final states the newer observation wins: a late `processing` event is older.
    return observed_at >= payment.stripe_state_at


def payment_apply_state(*, payment: Payment, state: PaymentIntentState, observed_at: int) -> bool:
    """Apply one observation of Stripe's state to a locked payment; True when it changed the status."""
    if state.payment_intent_id and not payment.stripe_payment_intent_id:
        payment.stripe_payment_intent_id = state.payment_intent_id
    if state.charge_id and not payment.stripe_charge_id:
        payment.stripe_charge_id = state.charge_id
    if state.receipt_url and not payment.receipt_url:
        payment.receipt_url = state.receipt_url
    payment.stripe_answered = True
    if not _may_apply(payment, state.status, observed_at):
        payment.save()
        return False
    changed = payment.status != state.status
    payment.status = state.status
    payment.stripe_status = state.stripe_status or payment.stripe_status
    payment.stripe_state_at = max(payment.stripe_state_at, observed_at)
    if state.status == PaymentStatus.FAILED:
        payment.failure_code = state.failure_code or payment.failure_code
        payment.failure_reason = state.failure_reason or payment.failure_reason or "The payment failed."
    elif state.status in (PaymentStatus.SUCCESS, PaymentStatus.REFUNDED):
        payment.failure_code = payment.failure_reason = ""
    payment.next_action = state.next_action if state.status == PaymentStatus.REQUIRES_ACTION else None
    payment.client_secret = state.client_secret if state.status == PaymentStatus.REQUIRES_ACTION else ""
    if state.status == PaymentStatus.REFUNDED and payment.refunded_at is None:
        payment.refunded_at = timezone.now()
    payment.save()
    return changed


def payment_create(*, tenant: Tenant, request: PaymentRequest, idempotency_key: str | None) -> PaymentOutcome:
    """Store the payment, then charge it once; a replayed key answers what the first request got."""
    account = gateway.account_for_new_payment(tenant)  # 503 before anything is written
    fingerprint = request.fingerprint()
    created = True
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                tenant=tenant,
                id=new_id("tx"),
                amount=request.amount,
                amount_minor=request.amount_minor,
                currency=request.currency.code,
                description=request.description,
                payment_method=request.payment_method,
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
                uses_tenant_key=account.uses_tenant_key,
            )
    except IntegrityError:
        if idempotency_key is None:
            raise
        created = False
        payment = Payment.objects.for_tenant(tenant).get(idempotency_key=idempotency_key)
        if payment.request_fingerprint != fingerprint:
            raise ApplicationError(
                "This Idempotency-Key was already used with a different request body; use a new key "
                "for a new payment",
                code="conflict",
                status=409,
                extra={"transaction_id": payment.id},
            ) from None
    return _charge(tenant=tenant, payment_id=payment.id, replayed=not created)


def _charge(*, tenant: Tenant, payment_id: str, replayed: bool) -> PaymentOutcome:
    with transaction.atomic():
        payment = Payment.objects.for_tenant(tenant).select_for_update().get(pk=payment_id)
        if payment.stripe_answered or payment.status != PaymentStatus.PENDING:
            return PaymentOutcome(payment, replayed=replayed)
        # Only a request that never got Stripe's answer gets here again (same Stripe idempotency
        # key, so Stripe itself returns the first intent instead of charging twice).
        try:
            state = gateway.create_and_confirm(gateway.account_for_payment(payment), payment)
        except StripeUnavailable as exc:
            logger.warning("Stripe unavailable for %s: %s", payment.id, exc)
            return PaymentOutcome(payment, replayed=replayed, upstream_error=exc)
        except StripeRejected as exc:
            state = PaymentIntentState(
                payment_intent_id="",
                stripe_status="",
                status=PaymentStatus.FAILED,
                failure_code=exc.code or "stripe_rejected",
                failure_reason=f"Stripe refused the payment: {exc.message}",
            )
        payment_apply_state(payment=payment, state=state, observed_at=gateway.now())
        return PaymentOutcome(payment, replayed=replayed)


def payment_get(*, tenant: Tenant, payment_id: str) -> Payment:
    payment = Payment.objects.for_tenant(tenant).filter(pk=payment_id).first()
    if payment is None:
        raise NotFound(f"Payment not found: {payment_id[:64]}")
    return payment


def payment_refresh(*, tenant: Tenant, payment_id: str) -> Payment:
    """The payment, brought up to date from Stripe when it is not final yet (best effort)."""
    payment = payment_get(tenant=tenant, payment_id=payment_id)
    if payment.is_final or not payment.stripe_payment_intent_id:
        return payment
    try:
        account = gateway.account_for_payment(payment)
        state = gateway.retrieve(account, payment.stripe_payment_intent_id)
    except (ApplicationError, StripeUnavailable, StripeRejected) as exc:
        logger.warning("Could not refresh %s from Stripe: %s", payment.id, exc)
        return payment  # the stored state is still the truth we know
    with transaction.atomic():
        locked = Payment.objects.for_tenant(tenant).select_for_update().get(pk=payment.pk)
        payment_apply_state(payment=locked, state=state, observed_at=gateway.now())
    return locked


def payment_refund(*, tenant: Tenant, payment_id: str) -> Payment:
    """Refund a successful payment in full; refunding a refunded payment answers it as it is."""
    with transaction.atomic():
        payment = Payment.objects.for_tenant(tenant).select_for_update().filter(pk=payment_id).first()
        if payment is None:
            raise NotFound(f"Payment not found: {payment_id[:64]}")
        if payment.status == PaymentStatus.REFUNDED:
            return payment
        if payment.status != PaymentStatus.SUCCESS:
            raise ApplicationError(
                f"Only a successful payment can be refunded; {payment.id} is {payment.status}",
                code="conflict",
                status=409,
            )
        account = gateway.account_for_payment(payment)
        try:
            refund_id = gateway.refund(account, payment)
        except StripeUnavailable as exc:
            raise ApplicationError(
                f"{exc}; nothing was refunded yet, try again", code=exc.code, status=exc.status
            ) from None
        except StripeRejected as exc:
            raise ApplicationError(
                f"Stripe refused the refund: {exc.message}", code="refund_failed", status=422
            ) from None
        payment.stripe_refund_id = refund_id
        payment.save(update_fields=["stripe_refund_id"])
        payment_apply_state(
            payment=payment,
            state=PaymentIntentState(
                payment_intent_id=payment.stripe_payment_intent_id,
                stripe_status=payment.stripe_status,
                status=PaymentStatus.REFUNDED,
                refunded=True,
            ),
            observed_at=gateway.now(),
        )
        return payment


def payment_reconcile(*, payment: Payment) -> str:
    """Settle one non-final payment with Stripe; returns what happened (for logs and the command)."""
    tenant = payment.tenant
    if payment.is_final:
        return "final"
    if payment.stripe_payment_intent_id:
        return f"refreshed: {payment_refresh(tenant=tenant, payment_id=payment.id).status}"
    if payment.stripe_answered:
        return "unchanged"
    age = timezone.now() - payment.created_at
    if age > timedelta(seconds=settings.SLOP_PAY_RETRY_CREATE_WITHIN_SECONDS):
        with transaction.atomic():
            locked = Payment.objects.for_tenant(tenant).select_for_update().get(pk=payment.pk)
            if locked.stripe_answered or locked.status != PaymentStatus.PENDING:
                return "unchanged"
            payment_apply_state(
                payment=locked,
                state=PaymentIntentState(
                    payment_intent_id="",
                    stripe_status="",
                    status=PaymentStatus.FAILED,
                    failure_code="stripe_unreachable",
                    failure_reason=(
                        "Stripe could not be reached when this payment was made and it was not "
                        "confirmed within the retry window; no charge is known"
                    ),
                ),
                observed_at=gateway.now(),
            )
        return "expired"
    try:
        outcome = _charge(tenant=tenant, payment_id=payment.id, replayed=True)
    except ApplicationError as exc:  # e.g. the key was removed since
        return f"skipped: {exc.message}"
    return "unreachable" if outcome.upstream_error else f"charged: {outcome.payment.status}"


def payments_to_reconcile(*, older_than_seconds: int) -> list[Payment]:
    """Every tenant's non-final payments older than the cut-off (an operator path: unscoped)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(
        Payment.objects.unscoped()
        .select_related("tenant")
        .filter(status__in=[PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION], created_at__lt=cutoff)
        .order_by("created_at")[:500]
    )
