"""Operators' admin: payments per tenant (money fields read-only), events, payment settings."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin import OperatorAdmin
from apps.core.crypto import encrypt_text
from apps.pay.models import Payment, PaymentSettings, StripeEvent
from apps.pay.money import CURRENCIES


@admin.register(Payment)
class PaymentAdmin(OperatorAdmin):
    list_display = ["id", "tenant", "status", "amount", "currency", "stripe_payment_intent_id", "created_at"]
    list_filter = ["status", "currency", "tenant"]
    search_fields = ["id", "stripe_payment_intent_id", "stripe_charge_id", "tenant__slug", "idempotency_key"]
    date_hierarchy = "created_at"
    # Money and Stripe's record are never edited by hand: Stripe is the source of truth.
    readonly_fields = [
        "id",
        "tenant",
        "amount",
        "amount_minor",
        "currency",
        "payment_method",
        "description",
        "status",
        "stripe_status",
        "failure_code",
        "failure_reason",
        "next_action",
        "stripe_payment_intent_id",
        "stripe_charge_id",
        "stripe_refund_id",
        "receipt_url",
        "uses_tenant_key",
        "stripe_answered",
        "stripe_state_at",
        "idempotency_key",
        "request_fingerprint",
        "created_at",
        "updated_at",
        "refunded_at",
    ]
    exclude = ["client_secret"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Payment]:
        return super().get_queryset(request).select_related("tenant")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(OperatorAdmin):
    list_display = ["event_id", "tenant", "type", "payment", "outcome", "received_at", "processed_at"]
    list_filter = ["type"]
    search_fields = ["event_id", "payment__id"]
    readonly_fields = [
        "event_id",
        "type",
        "tenant",
        "payment",
        "created",
        "received_at",
        "processed_at",
        "outcome",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class PaymentSettingsForm(forms.ModelForm):
    stripe_secret_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="This team's own Stripe secret key (sk_…); stored encrypted. Blank keeps the current one.",
    )
    stripe_webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="The signing secret (whsec_…) of the endpoint /pay/webhook/<team slug> in that account.",
    )
    clear_stripe_keys = forms.BooleanField(
        required=False, help_text="Forget both secrets (use the platform's)"
    )

    class Meta:
        model = PaymentSettings
        fields = ["tenant", "max_amounts", "allowed_currencies"]

    def clean_max_amounts(self) -> dict[str, str]:
        raw = self.cleaned_data.get("max_amounts") or {}
        if not isinstance(raw, dict):
            raise forms.ValidationError('A JSON object: {"USD": "500.00"}')
        cleaned: dict[str, str] = {}
        for code, value in raw.items():
            if str(code).upper() not in CURRENCIES:
                raise forms.ValidationError(f"{code} is not a currency the platform knows")
            try:
                amount = Decimal(str(value))
            except InvalidOperation:
                raise forms.ValidationError(f"{value!r} is not an amount") from None
            if not amount.is_finite() or amount <= 0:
                raise forms.ValidationError(f"The maximum for {code} must be positive")
            cleaned[str(code).upper()] = str(amount)
        return cleaned

    def clean_allowed_currencies(self) -> list[str]:
        raw = self.cleaned_data.get("allowed_currencies") or []
        if not isinstance(raw, list) or any(str(code).upper() not in CURRENCIES for code in raw):
            raise forms.ValidationError('A JSON list of known currency codes: ["USD", "EUR"]')
        return sorted({str(code).upper() for code in raw})


@admin.register(PaymentSettings)
class PaymentSettingsAdmin(OperatorAdmin):
    form = PaymentSettingsForm
    list_display = ["tenant", "has_own_stripe_key", "updated_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PaymentSettings]:
        return super().get_queryset(request).select_related("tenant")

    @admin.display(boolean=True, description="own Stripe key")
    def has_own_stripe_key(self, obj: PaymentSettings) -> bool:
        return bool(obj.stripe_secret_key_encrypted)

    def save_model(self, request: HttpRequest, obj: PaymentSettings, form: Any, change: bool) -> None:
        if form.cleaned_data.get("clear_stripe_keys"):
            obj.stripe_secret_key_encrypted = obj.stripe_webhook_secret_encrypted = ""
        if form.cleaned_data.get("stripe_secret_key"):
            obj.stripe_secret_key_encrypted = encrypt_text(form.cleaned_data["stripe_secret_key"].strip())
        if form.cleaned_data.get("stripe_webhook_secret"):
            obj.stripe_webhook_secret_encrypted = encrypt_text(
                form.cleaned_data["stripe_webhook_secret"].strip()
            )
        super().save_model(request, obj, form, change)
