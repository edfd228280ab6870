from __future__ import annotations

from django.db import models

from apps.core.models import TenantOwnedModel


class Plan(models.Model):
    """A plan teams subscribe to (platform configuration, not tenant data): what a month includes,
    the Stripe prices behind it and the rate limit. Seeded: free, pro, team."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    is_public = models.BooleanField(default=True, help_text="Offered for checkout")
    stripe_price_id = models.CharField(max_length=100, blank=True, help_text="The flat monthly price")
    # {"input_tokens": "price_…", "output_tokens": "price_…", "tool_calls": "price_…", …}
    stripe_metered_prices = models.JSONField(default=dict, blank=True)
    monthly_price_cents = models.PositiveIntegerField(default=0)
    # What a month includes; null = unlimited.
    included_tokens = models.BigIntegerField(null=True, blank=True)
    included_tool_calls = models.BigIntegerField(null=True, blank=True)
    included_memory_items = models.BigIntegerField(null=True, blank=True)
    included_resource_bytes = models.BigIntegerField(null=True, blank=True)
    included_api_keys = models.PositiveIntegerField(null=True, blank=True)
    included_members = models.PositiveIntegerField(null=True, blank=True)
    overage_allowed = models.BooleanField(default=False, help_text="Bill usage past what is included")
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["monthly_price_cents", "slug"]

    def __str__(self) -> str:
        return self.slug


class BillingAccount(TenantOwnedModel):
    """A team's side of billing: its plan, Stripe customer and subscription state. The state is
    written only from verified Stripe webhooks (and by an operator's override, with a reason)."""

    class Status(models.TextChoices):
        NONE = "none"  # never subscribed: on the free plan
        ACTIVE = "active"
        TRIALING = "trialing"
        PAST_DUE = "past_due"  # a payment failed: grace period until grace_until
        CANCELED = "canceled"

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="billing_account", db_index=True
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="accounts")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NONE)
    stripe_customer_id = models.CharField(max_length=100, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True, db_index=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    grace_until = models.DateTimeField(null=True, blank=True)
    # The Stripe object timestamp last applied, so out-of-order webhooks never roll state back.
    stripe_state_at = models.DateTimeField(null=True, blank=True)
    override_plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="overridden_accounts"
    )
    override_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tenant} on {self.plan}"

    @property
    def effective_plan(self) -> Plan:
        return self.override_plan or self.plan


class BillingStripeEvent(models.Model):
    """A webhook event /billing/webhook has already applied (written in the same transaction as
    the change it made), so each event is applied once however often Stripe delivers it.

    Billing's own ledger, not /pay's StripeEvent: pay sits above billing in the layers, and one
    Stripe account may deliver the same event id to both endpoints; a shared once-per-event row
    written by /pay/webhook ("ignored: not a payment event") would make /billing/webhook drop it."""

    event_id = models.CharField(max_length=255, unique=True, help_text="Stripe's event id")
    type = models.CharField(max_length=100)
    # The team the event was about (null when it concerned no account of ours).
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.BigIntegerField(help_text="The event's own Unix time at Stripe")
    received_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "billing Stripe event"

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"
