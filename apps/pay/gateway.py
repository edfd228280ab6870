"""The only module that talks to Stripe (the official SDK), and what its answers mean to us.

Which key: the tenant's own (PaymentSettings, encrypted) when it has one, else the platform's
STRIPE_SECRET_KEY. STRIPE_API_BASE points the SDK at another Stripe-compatible server (localstripe in
tests). Network failures become `StripeUnavailable` (502) or `StripeTimeout` (504); card declines
come back as data (`PaymentIntentState`), because a decline is an answer, not an outage.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import httpx
import stripe
from django.conf import settings

from apps.core.crypto import decrypt_text_or_none
from apps.core.errors import ApplicationError
from apps.core.tenant_cache import TenantSnapshots
from apps.pay.models import Payment, PaymentSettings, PaymentStatus
from apps.tenants.models import Tenant

NOT_CONFIGURED = (
    "Payments are not configured on this server: set STRIPE_SECRET_KEY (and STRIPE_WEBHOOK_SECRET "
    "for Stripe's webhooks; STRIPE_API_BASE to use another Stripe-compatible server), or give this "
    "tenant its own Stripe key in the admin (Payments → Payment settings)."
)


def not_configured() -> ApplicationError:
    return ApplicationError(NOT_CONFIGURED, code="payments_not_configured", status=503)


class StripeUnavailable(Exception):
    """Stripe could not be reached or answered with a server error: the outcome is unknown."""

    status = 502
    code = "stripe_unavailable"


class StripeTimeout(StripeUnavailable):
    status = 504
    code = "stripe_timeout"


class StripeRejected(Exception):
    """Stripe refused the request itself (bad parameters, unknown payment method, auth)."""

    def __init__(self, message: str, code: str, http_status: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status


@dataclass(frozen=True)
class PaymentIntentState:
    """What a PaymentIntent says, mapped onto our statuses."""

    payment_intent_id: str
    stripe_status: str
    status: str
    failure_code: str = ""
    failure_reason: str = ""
    next_action: dict[str, Any] | None = None
    client_secret: str = ""
    charge_id: str = ""
    receipt_url: str = ""
    refunded: bool = False


STRIPE_TO_STATUS = {
    "succeeded": PaymentStatus.SUCCESS,
    "processing": PaymentStatus.PENDING,
    "requires_confirmation": PaymentStatus.PENDING,
    "requires_capture": PaymentStatus.PENDING,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "requires_payment_method": PaymentStatus.FAILED,  # only after a failed attempt, for us
    "canceled": PaymentStatus.CANCELED,
}


@functools.cache
def _http_client(timeout: float) -> stripe.HTTPXClient:
    # One pooled, thread-safe client per process; a slow Stripe costs at most `timeout` per try.
    return stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True)


def _tenant_settings(tenant: Tenant) -> PaymentSettings | None:
    return PaymentSettings.objects.for_tenant(tenant).first()


def tenant_secret_key(tenant: Tenant) -> str | None:
    row = _tenant_settings(tenant)
    return decrypt_text_or_none(row.stripe_secret_key_encrypted) if row else None


def payments_configured_for(tenant: Tenant) -> bool:
    return bool(settings.STRIPE_SECRET_KEY or tenant_secret_key(tenant))


# Whether a tenant has a Stripe key of its own, for /info (a charge reads the key afresh).
def _has_own_key(tenant_id: int) -> bool:
    row = PaymentSettings.objects.for_tenant(tenant_id).first()
    return bool(row and decrypt_text_or_none(row.stripe_secret_key_encrypted))


tenant_payment_snapshots = TenantSnapshots(_has_own_key)


def payments_configured_cached(tenant: Tenant) -> bool:
    return bool(settings.STRIPE_SECRET_KEY) or tenant_payment_snapshots.get(int(tenant.pk))


@dataclass(frozen=True)
class StripeAccount:
    client: stripe.StripeClient
    uses_tenant_key: bool


def _client(api_key: str) -> stripe.StripeClient:
    base = settings.STRIPE_API_BASE
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": base} if base else None,
        http_client=_http_client(settings.STRIPE_TIMEOUT_SECONDS),
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
    )


def account_for_new_payment(tenant: Tenant) -> StripeAccount:
    """The tenant's own key first, else the platform's; 503 when neither exists."""
    own = tenant_secret_key(tenant)
    if own:
        return StripeAccount(_client(own), uses_tenant_key=True)
    if settings.STRIPE_SECRET_KEY:
        return StripeAccount(_client(settings.STRIPE_SECRET_KEY), uses_tenant_key=False)
    raise not_configured()


def account_for_payment(payment: Payment) -> StripeAccount:
    """The same account that charged the payment (refunds and refreshes must go there)."""
    key = tenant_secret_key(payment.tenant) if payment.uses_tenant_key else settings.STRIPE_SECRET_KEY
    if not key:
        raise not_configured()
    return StripeAccount(_client(key), uses_tenant_key=payment.uses_tenant_key)


def _translate(exc: stripe.StripeError) -> Exception:
    if isinstance(exc, stripe.APIConnectionError):
        if isinstance(exc.__cause__, httpx.TimeoutException):
            return StripeTimeout(f"Stripe did not answer within {settings.STRIPE_TIMEOUT_SECONDS:g}s")
        return StripeUnavailable("Stripe could not be reached")
    status = exc.http_status or 0
    if isinstance(exc, stripe.RateLimitError) or status >= 500 or status == 0:
        return StripeUnavailable(f"Stripe answered {status or 'an error'}: {exc.user_message or 'no reason'}")
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return StripeUnavailable("Stripe refused the configured secret key")
    code = (exc.code or "") if isinstance(exc.code, str) else ""
    return StripeRejected(exc.user_message or str(exc) or "Stripe refused the request", code, status)


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, stripe.StripeObject):
        return value.to_dict()
    return dict(value) if isinstance(value, dict) else {}


def _charge_fields(charge: Any) -> tuple[str, str, bool]:
    """(id, receipt URL, fully refunded) of an expanded or bare `latest_charge`."""
    if not charge:
        return "", "", False
    if isinstance(charge, str):
        return charge, "", False
    data = _as_dict(charge)
    return str(data.get("id") or ""), str(data.get("receipt_url") or ""), bool(data.get("refunded"))


def state_from_intent(intent: Any) -> PaymentIntentState:
    """Map a PaymentIntent (SDK object or the dict inside a webhook event) onto our statuses."""
    data = _as_dict(intent)
    stripe_status = str(data.get("status") or "")
    charge_id, receipt_url, refunded = _charge_fields(data.get("latest_charge"))
    error = data.get("last_payment_error") or {}
    status = STRIPE_TO_STATUS.get(stripe_status, PaymentStatus.PENDING)
    if stripe_status == "requires_payment_method" and not error:
        status = PaymentStatus.PENDING  # never attempted yet: not a failure
    if status == PaymentStatus.SUCCESS and refunded:
        status = PaymentStatus.REFUNDED
    next_action = data.get("next_action") if status == PaymentStatus.REQUIRES_ACTION else None
    return PaymentIntentState(
        payment_intent_id=str(data.get("id") or ""),
        stripe_status=stripe_status,
        status=status,
        failure_code=str(error.get("decline_code") or error.get("code") or ""),
        failure_reason=str(error.get("message") or ""),
        next_action=next_action,
        client_secret=str(data.get("client_secret") or "") if next_action else "",
        charge_id=charge_id,
        receipt_url=receipt_url,
        refunded=refunded,
    )


def _intent_params(payment: Payment) -> dict[str, Any]:
    params: dict[str, Any] = {
        "amount": payment.amount_minor,
        "currency": payment.currency.lower(),
        "payment_method": payment.payment_method,
        "payment_method_types": ["card"],
        "confirm": True,
        "expand": ["latest_charge"],
        # Found again from a webhook even if our request timed out before learning the intent's id.
        "metadata": {
            "slop_transaction_id": payment.id,
            "slop_tenant": str(payment.tenant_id),
            "description": payment.description,
        },
    }
    # localstripe rejects `description` on PaymentIntents; real Stripe shows it in the dashboard.
    if payment.description and not settings.STRIPE_LOCALSTRIPE_COMPAT:
        params["description"] = payment.description
    return params


def create_and_confirm(account: StripeAccount, payment: Payment) -> PaymentIntentState:
    """Create and confirm the PaymentIntent; the same payment always sends the same idempotency key."""
    try:
        intent = account.client.v1.payment_intents.create(
            params=_intent_params(payment),  # type: ignore[arg-type]
            options={"idempotency_key": f"slop-pay-{payment.id}"},
        )
    except stripe.CardError as exc:
        return _declined(account, exc)
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    return state_from_intent(intent)


def _declined(account: StripeAccount, exc: stripe.CardError) -> PaymentIntentState:
    """A decline: Stripe names the intent in the error (localstripe names only the charge)."""
    error = _as_dict(_as_dict(exc.json_body).get("error"))
    intent = error.get("payment_intent")
    intent_id = str(intent.get("id") if isinstance(intent, dict) else intent or "")
    charge_id = str(error.get("charge") or "")
    if not intent_id and charge_id:
        try:
            intent_id = str(
                _as_dict(account.client.v1.charges.retrieve(charge_id)).get("payment_intent") or ""
            )
        except stripe.StripeError:
            intent_id = ""
    return PaymentIntentState(
        payment_intent_id=intent_id,
        stripe_status="requires_payment_method",
        status=PaymentStatus.FAILED,
        failure_code=str(error.get("decline_code") or error.get("code") or "card_declined"),
        failure_reason=str(error.get("message") or exc.user_message or "The card was declined."),
        charge_id=charge_id,
    )


def retrieve(account: StripeAccount, payment_intent_id: str) -> PaymentIntentState:
    try:
        intent = account.client.v1.payment_intents.retrieve(
            payment_intent_id, params={"expand": ["latest_charge"]}
        )
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    return state_from_intent(intent)


def refund(account: StripeAccount, payment: Payment) -> str:
    """Refund the whole payment; returns the refund id. Idempotent per payment at Stripe."""
    try:
        created = account.client.v1.refunds.create(
            params={
                "payment_intent": payment.stripe_payment_intent_id,
                "metadata": {"slop_transaction_id": payment.id},
            },
            options={"idempotency_key": f"slop-refund-{payment.id}"},
        )
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    data = _as_dict(created)
    if data.get("status") == "failed":
        raise StripeRejected("Stripe could not refund this payment", "refund_failed", 402)
    return str(data.get("id") or "")


def now() -> int:
    return int(time.time())
