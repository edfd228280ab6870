"""JSON in and out with exact decimals: `5.00` stays 5.00 both ways, never a binary float."""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from typing import Any

from rest_framework.renderers import JSONRenderer

from apps.core.parsers import JSONParser, refuse_constant
from apps.pay.models import Payment
from apps.pay.money import CURRENCIES, from_minor_units


class DecimalJSONParser(JSONParser):
    """Parses JSON numbers with a fraction as Decimal (an integer stays an int)."""

    def loads(self, text: str) -> Any:
        return json.loads(text, parse_float=Decimal, parse_constant=refuse_constant)


class ExactDecimalRenderer(JSONRenderer):
    """Writes a Decimal as a JSON number with exactly its digits (5.00, 500, 5.125)."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        marker = uuid.uuid4().hex

        def swap(value: Any) -> Any:
            if isinstance(value, Decimal):
                return f"{marker}{value:f}{marker}"
            if isinstance(value, dict):
                return {key: swap(item) for key, item in value.items()}
            if isinstance(value, list):
                return [swap(item) for item in value]
            return value

        body = super().render(swap(data), accepted_media_type, renderer_context)
        pattern = re.compile(rb'"' + marker.encode() + rb"(-?[0-9]+(?:\.[0-9]+)?)" + marker.encode() + rb'"')
        return pattern.sub(rb"\1", body)


def _timestamp(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def payment_to_dict(payment: Payment) -> dict[str, Any]:
    """The seed's fields first (transaction_id, status, amount, …), then what Stripe told us."""
    currency = CURRENCIES.get(payment.currency)
    amount = from_minor_units(payment.amount_minor, currency) if currency else payment.amount
    body: dict[str, Any] = {
        "transaction_id": payment.id,
        "status": payment.status,
        "amount": amount,
        "amount_minor": payment.amount_minor,
        "currency": payment.currency,
        "description": payment.description,
        "receipt_url": payment.receipt_url or None,
        "charge_id": payment.stripe_charge_id or None,
        "payment_intent_id": payment.stripe_payment_intent_id or None,
        "failure_code": payment.failure_code or None,
        "failure_reason": payment.failure_reason or None,
        "next_action": payment.next_action,
        "created_at": _timestamp(payment.created_at),
        "updated_at": _timestamp(payment.updated_at),
        "refunded_at": _timestamp(payment.refunded_at),
    }
    if payment.client_secret:  # the customer's browser needs it to finish 3-D Secure
        body["client_secret"] = payment.client_secret
    return body
