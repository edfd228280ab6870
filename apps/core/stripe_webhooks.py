"""Stripe webhook signatures, for every endpoint that receives Stripe's events (/pay/webhook,
/billing/webhook): the SDK's check plus a refusal of timestamps from the future."""

from __future__ import annotations

import time
from typing import Any

import stripe
from django.conf import settings

from apps.core.errors import ApplicationError


def stripe_event_verified(*, payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event, if Stripe (holding `secret`) signed exactly these bytes recently; else 400."""
    if not signature:
        raise ApplicationError("Missing Stripe-Signature header", code="invalid_signature", status=400)
    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=tolerance)
    except stripe.SignatureVerificationError:
        raise ApplicationError(
            "The Stripe-Signature does not match this payload, or it is too old",
            code="invalid_signature",
            status=400,
        ) from None
    except ValueError:
        raise ApplicationError("The webhook body is not a JSON event", code="invalid_request") from None
    # The SDK's tolerance only refuses old timestamps; a signature from the future is refused too,
    # or a captured delivery signed with a skewed clock would be replayable for as long as it is.
    signed_at = _signed_at(signature)
    if signed_at is None or signed_at > time.time() + tolerance:
        raise ApplicationError(
            "The Stripe-Signature timestamp is in the future", code="invalid_signature", status=400
        )
    data = event.to_dict()
    if not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str):
        raise ApplicationError("The event has no id or type", code="invalid_request")
    return data


def _signed_at(signature: str) -> int | None:
    """The `t=` of a Stripe-Signature header (the first one, as the SDK reads it)."""
    for item in signature.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            return int(value) if value.isdigit() else None
    return None
