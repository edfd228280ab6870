"""What a POST /pay body must hold, checked all at once so the client sees every problem."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apps.core.errors import ApplicationError
from apps.core.serializers import validated
from apps.pay.money import Currency
from apps.pay.serializers import PaymentCreateSerializer
from apps.tenants.models import Tenant

MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True)
class PaymentRequest:
    amount: Decimal
    currency: Currency
    amount_minor: int
    description: str
    payment_method: str

    def fingerprint(self) -> str:
        """Equal for bodies that ask for the same charge (5, 5.0 and "5.00" USD are one amount)."""
        canonical = json.dumps(
            [self.amount_minor, self.currency.code, self.description, self.payment_method],
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def payment_request_validate(*, tenant: Tenant, body: Any) -> PaymentRequest:
    """The body checked by PaymentCreateSerializer (fields, then the team's and Stripe's limits)."""
    data = validated(PaymentCreateSerializer, body, tenant=tenant)
    currency: Currency = data["currency"]
    return PaymentRequest(
        amount=data["amount"].quantize(currency.quantum()),
        currency=currency,
        amount_minor=data["amount_minor"],
        description=data.get("description") or "",
        payment_method=data["payment_method"],
    )


def idempotency_key_from(headers: Any) -> str | None:
    raw = headers.get("Idempotency-Key")
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise ApplicationError(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters",
            code="validation_error",
            extra={"details": {"Idempotency-Key": ["1 to 255 printable ASCII characters."]}},
        )
    return key
