"""The shapes of /pay (PROTOCOL.md §9): POST /pay is validated with PaymentCreateSerializer (see
validation.py) and /openapi.json documents the same class."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.serializers import ObjectSerializer, PageQuerySerializer, StrictCharField
from apps.pay.models import PaymentSettings, PaymentStatus
from apps.pay.money import STRIPE_MAX_MINOR, Currency, MoneyError, currency_for, parse_amount, to_minor_units

MAX_DESCRIPTION = 500  # Stripe's limit for a metadata value, where the description also travels
STRIPE_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")
PAYMENT_METHOD_REQUIRED = "payment_method is required: a Stripe PaymentMethod id such as pm_card_visa."
PAYMENT_METHOD_RULE = "payment_method must be a Stripe id: letters, digits and underscores."


@extend_schema_field(
    {
        "oneOf": [
            {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
        ],
        "description": "Major units (5.00 USD), exact: a JSON number or a decimal string",
        "example": 5.00,
    }
)
class AmountField(serializers.Field):
    default_error_messages = {"required": "amount is required and must be a number, e.g. 5.00."}

    def to_internal_value(self, data: Any) -> Decimal:
        try:
            return parse_amount(data)
        except MoneyError as exc:
            raise serializers.ValidationError(exc.message) from None

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "string", "pattern": "^[A-Za-z]{3}$", "example": "USD"})
class CurrencyField(serializers.Field):
    default_error_messages = {"required": "A three-letter ISO 4217 currency code is required, e.g. USD."}

    def to_internal_value(self, data: Any) -> Currency:
        try:
            return currency_for(data)
        except MoneyError as exc:
            raise serializers.ValidationError(exc.message) from None

    def to_representation(self, value: Any) -> Any:
        return value.code if isinstance(value, Currency) else value


class PaymentCreateSerializer(ObjectSerializer):
    amount = AmountField()
    currency = CurrencyField()
    description = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        trim_whitespace=False,
        max_length=MAX_DESCRIPTION,
        error_messages={"max_length": f"description is at most {MAX_DESCRIPTION} characters."},
    )
    payment_method = StrictCharField(
        help_text="A Stripe PaymentMethod id such as pm_card_visa",
        error_messages={
            "required": PAYMENT_METHOD_REQUIRED,
            "blank": PAYMENT_METHOD_REQUIRED,
            "null": PAYMENT_METHOD_REQUIRED,
            "invalid": PAYMENT_METHOD_RULE,
        },
    )

    def validate_payment_method(self, value: str) -> str:
        if not STRIPE_ID.match(value):
            raise serializers.ValidationError(PAYMENT_METHOD_RULE)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        currency: Currency = attrs["currency"]
        amount: Decimal = attrs["amount"]
        try:
            attrs["amount_minor"] = minor = to_minor_units(amount, currency)
        except MoneyError as exc:
            raise serializers.ValidationError({exc.field: [exc.message]}) from None
        row = PaymentSettings.objects.for_tenant(self.context["tenant"]).first()
        if row is not None and row.allowed_currencies and currency.code not in row.allowed_currencies:
            allowed = ", ".join(sorted(row.allowed_currencies))
            raise serializers.ValidationError(
                {"currency": [f"This team accepts payments in {allowed} only."]}
            )
        limit = row.max_amount_for(currency.code) if row is not None else None
        if limit is not None and amount > limit:
            raise serializers.ValidationError(
                {"amount": [f"amount exceeds this team's maximum of {limit} {currency.code} per payment."]}
            )
        if minor > STRIPE_MAX_MINOR:
            raise serializers.ValidationError(
                {
                    "amount": [
                        f"amount exceeds the largest single payment Stripe takes ({STRIPE_MAX_MINOR} minor "
                        f"units of {currency.code})."
                    ]
                }
            )
        return attrs


class PaymentListQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=PaymentStatus.choices, required=False, allow_blank=True)


class PaymentSerializer(serializers.Serializer):
    transaction_id = serializers.CharField(help_text="tx_…")
    status = serializers.ChoiceField(choices=PaymentStatus.choices)
    amount = serializers.DecimalField(max_digits=30, decimal_places=8, coerce_to_string=False)
    amount_minor = serializers.IntegerField()
    currency = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    receipt_url = serializers.CharField(allow_null=True)
    charge_id = serializers.CharField(allow_null=True)
    payment_intent_id = serializers.CharField(allow_null=True)
    failure_code = serializers.CharField(allow_null=True)
    failure_reason = serializers.CharField(allow_null=True)
    next_action = serializers.DictField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    refunded_at = serializers.DateTimeField(allow_null=True)
    client_secret = serializers.CharField(required=False, help_text="requires_action: for the browser")


class PaymentFailedSerializer(PaymentSerializer):
    error = serializers.CharField()
    code = serializers.ChoiceField(choices=["payment_failed"])


class PaymentListSerializer(serializers.Serializer):
    payments = PaymentSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class WebhookReceiptSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    event = serializers.CharField()
    outcome = serializers.CharField()
