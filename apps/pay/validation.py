"""What a POST /pay body must hold, checked all at once so the client sees every problem."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apps.core.errors import ApplicationError, ValidationFailed
from apps.pay.models import PaymentSettings
from apps.pay.money import STRIPE_MAX_MINOR, Currency, MoneyError, currency_for, parse_amount, to_minor_units
from apps.tenants.models import Tenant

MAX_DESCRIPTION = 500  # Stripe's limit for a metadata value, where the description also travels
MAX_IDEMPOTENCY_KEY = 255
STRIPE_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")


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


def _payment_method(raw: Any, errors: dict[str, list[str]]) -> str:
    if raw is None or raw == "":
        errors["payment_method"] = [
            "payment_method is required: a Stripe PaymentMethod id such as pm_card_visa."
        ]
        return ""
    if not isinstance(raw, str) or not STRIPE_ID.match(raw):
        errors["payment_method"] = ["payment_method must be a Stripe id: letters, digits and underscores."]
        return ""
    return raw


def _description(raw: Any, errors: dict[str, list[str]]) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        errors["description"] = ["description must be a string."]
        return ""
    if len(raw) > MAX_DESCRIPTION:
        errors["description"] = [f"description is at most {MAX_DESCRIPTION} characters."]
        return ""
    return raw


def payment_request_validate(*, tenant: Tenant, body: dict[str, Any]) -> PaymentRequest:
    errors: dict[str, list[str]] = {}
    currency: Currency | None = None
    amount: Decimal | None = None
    minor = 0
    try:
        currency = currency_for(body.get("currency"))
    except MoneyError as exc:
        errors[exc.field] = [exc.message]
    try:
        amount = parse_amount(body.get("amount"))
        if currency is not None:
            minor = to_minor_units(amount, currency)
    except MoneyError as exc:
        errors[exc.field] = [exc.message]
    payment_method = _payment_method(body.get("payment_method"), errors)
    description = _description(body.get("description"), errors)

    if currency is not None and amount is not None and "amount" not in errors:
        _check_limits(tenant, currency, amount, minor, errors)
    if errors:
        raise ValidationFailed(errors)
    assert currency is not None and amount is not None
    return PaymentRequest(
        amount=amount.quantize(currency.quantum()),
        currency=currency,
        amount_minor=minor,
        description=description,
        payment_method=payment_method,
    )


def _check_limits(
    tenant: Tenant, currency: Currency, amount: Decimal, minor: int, errors: dict[str, list[str]]
) -> None:
    row = PaymentSettings.objects.for_tenant(tenant).first()
    if row is not None and row.allowed_currencies and currency.code not in row.allowed_currencies:
        errors["currency"] = [
            f"This team accepts payments in {', '.join(sorted(row.allowed_currencies))} only."
        ]
        return
    limit = row.max_amount_for(currency.code) if row is not None else None
    if limit is not None and amount > limit:
        errors["amount"] = [f"amount exceeds this team's maximum of {limit} {currency.code} per payment."]
    elif minor > STRIPE_MAX_MINOR:
        errors["amount"] = [
            f"amount exceeds the largest single payment Stripe takes ({STRIPE_MAX_MINOR} minor units of "
            f"{currency.code})."
        ]


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
