"""Payments, the Stripe events already applied, and each tenant's payment settings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from apps.core.models import TenantOwnedModel, TimestampedModel


class PaymentStatus(models.TextChoices):
    SUCCESS = "success"
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    FAILED = "failed"
    CANCELED = "canceled"
    REFUNDED = "refunded"


class Payment(TenantOwnedModel, TimestampedModel):
    """One POST /pay: stored (pending) before Stripe is called, so nothing is ever lost."""

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    amount = models.DecimalField(max_digits=24, decimal_places=3)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=500, blank=True, default="")
    payment_method = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    failure_code = models.CharField(max_length=100, blank=True, default="")
    failure_reason = models.TextField(blank=True, default="")
    next_action = models.JSONField(null=True, blank=True)
    client_secret = models.CharField(max_length=255, blank=True, default="")
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    stripe_status = models.CharField(max_length=40, blank=True, default="")
    stripe_charge_id = models.CharField(max_length=255, blank=True, default="")
    stripe_refund_id = models.CharField(max_length=255, blank=True, default="")
    receipt_url = models.URLField(max_length=1000, blank=True, default="")
    # Which key charged it: the platform's or the tenant's own (refreshes must use the same one).
    uses_tenant_key = models.BooleanField(default=False)
    # Unix time of the Stripe state last applied; older observations never overwrite newer ones.
    stripe_state_at = models.BigIntegerField(default=0)
    # Set once Stripe has answered (or a webhook told us): until then a retry may call Stripe again.
    stripe_answered = models.BooleanField(default=False)
    # NULL (not "") means "no key": the unique constraint below only covers keyed payments.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    request_fingerprint = models.CharField(max_length=64)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="payment_idempotency_key_per_tenant",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="payment_tenant_created"),
            models.Index(fields=["status", "created_at"], name="payment_status_created"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.amount} {self.currency} {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


FINAL_STATUSES = {PaymentStatus.SUCCESS, PaymentStatus.CANCELED, PaymentStatus.REFUNDED}


class StripeEvent(models.Model):
    """A webhook event already applied: its row is written in the same transaction as the change.

    Once per account, not once globally: a tenant signs its own endpoint's events with its own
    secret, so it can send any event id it likes; a global key would let it learn (and pre-empt) the
    ids delivered to other tenants or to the platform."""

    event_id = models.CharField(max_length=255, help_text="Stripe's event id")
    type = models.CharField(max_length=100)
    # The tenant whose key's webhook delivered it; null for the platform account.
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.BigIntegerField(help_text="The event's own Unix time at Stripe")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [
            # NULLS NOT DISTINCT: the platform account's events (tenant NULL) are once-only too.
            models.UniqueConstraint(
                fields=["tenant", "event_id"], name="stripe_event_once_per_account", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


class PaymentSettings(TenantOwnedModel):
    """A tenant's own limits and (optionally) its own Stripe account, its secrets encrypted."""

    max_amounts = models.JSONField(
        default=dict,
        blank=True,
        help_text='Largest payment per currency (major units): {"USD": "500.00"}',
    )
    allowed_currencies = models.JSONField(
        default=list, blank=True, help_text="Empty: every currency the platform knows"
    )
    stripe_secret_key_encrypted = models.TextField(blank=True, default="")
    stripe_webhook_secret_encrypted = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "payment settings"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="payment_settings_one_per_tenant")]

    def __str__(self) -> str:
        return f"payment settings of {self.tenant_id}"

    def validate_constraints(self, exclude: Any = None) -> None:
        # Django's own check queries the default manager, which fails closed without a tenant.
        if self.tenant_id and PaymentSettings.objects.for_tenant(self.tenant_id).exclude(pk=self.pk).exists():
            raise ValidationError({"tenant": "This team already has payment settings."})

    def max_amount_for(self, currency: str) -> Decimal | None:
        raw = (self.max_amounts or {}).get(currency)
        return Decimal(str(raw)) if raw is not None else None
