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
    # What usage past the included amount costs, for estimates (Stripe's metered prices bill it):
    # {"input_tokens": "2.00", "output_tokens": "8.00", "tool_calls": "500", "job_seconds": "10"}, in
    # the plan's currency per million units.
    unit_prices = models.JSONField(default=dict, blank=True)
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
    end_user_monthly_token_cap = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="LLM tokens each end user (X-SLOP-User) may use per billing period; empty: no cap",
    )
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


class UsageEvent(TenantOwnedModel):
    """The ledger: one row per billable thing that happened (a chat exchange's tokens, a tool call,
    a finished job's seconds), written where it happened, in the same transaction as the work
    where there is one. `report` is the meter-report batch that sent it to Stripe (null: not yet)."""

    class Kind(models.TextChoices):
        LLM = "llm"
        TOOL = "tool"
        JOB = "job"

    created_at = models.DateTimeField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # Plain ids, not foreign keys: the ledger outlives keys, and an insert checks no constraint.
    api_key_id = models.BigIntegerField(null=True, blank=True)
    end_user = models.CharField(max_length=200, blank=True, default="")
    agent = models.CharField(max_length=64, blank=True, default="")
    model = models.CharField(max_length=100, blank=True, default="")
    tool = models.CharField(max_length=64, blank=True, default="")
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    tool_calls = models.IntegerField(default=0)
    job_seconds = models.BigIntegerField(default=0)
    report = models.ForeignKey(
        "billing.MeterReport", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="billing_usage_tenant_time"),
            models.Index(
                fields=["tenant", "id"],
                name="billing_usage_unreported",
                condition=models.Q(report__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.kind} {self.created_at:%Y-%m-%d %H:%M}"


class UsageCounter(TenantOwnedModel):
    """What a tenant, one of its keys, or one of its end users has used this billing period, kept
    next to the ledger (same statement) so that a quota check reads one row. `reserved_*` is what
    requests admitted but not finished may still use: the admission check counts it, so that
    concurrent requests at the limit cannot all pass. A reservation a crashed process never
    released is dropped once `reserved_since` is SLOP_BILLING_HOLD_SECONDS old."""

    class Scope(models.TextChoices):
        TENANT = "tenant"
        KEY = "key"
        USER = "user"

    period_start = models.DateField()
    scope = models.CharField(max_length=8, choices=Scope.choices)
    subject = models.CharField(max_length=200, blank=True, default="")  # "", a key id, an end user
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    tool_calls = models.BigIntegerField(default=0)
    job_seconds = models.BigIntegerField(default=0)
    reserved_tokens = models.BigIntegerField(default=0)
    reserved_tool_calls = models.BigIntegerField(default=0)
    reserved_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "period_start", "scope", "subject"], name="billing_counter_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.period_start} {self.scope}:{self.subject}"

    @property
    def tokens(self) -> int:
        return int(self.input_tokens + self.output_tokens)


class CapCounter(TenantOwnedModel):
    """How much of a capped thing (apps/billing/caps.py: memory_items, resource_bytes, api_keys,
    members) a tenant keeps, so that a cap check reads one row instead of counting the tenant's
    rows. Kept by database triggers on the counted tables, in the statement that inserts, updates
    or deletes the rows (billing/migrations/_cap_triggers.py): every way to add or remove one, the
    ORM, a bulk delete, a cascade or raw SQL, moves the counter in the same transaction.

    No row means none: a trigger makes it on the first addition, and the cap check makes it (at 0)
    to lock it. `used` for api_keys counts keys not revoked; the check subtracts expired ones."""

    what = models.CharField(max_length=32)
    used = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "what"], name="billing_capcounter_unique")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.what}: {self.used}"


class MeterReport(TenantOwnedModel):
    """One batch of ledger rows, sent to Stripe as one meter event per unit (`quantities`:
    {"input_tokens": n, ...}). The identifiers (`<identifier>-<unit>`) are fixed when the batch is
    made, so every retry sends the same ones and Stripe counts each once. `sent_at` null: some unit
    is still to send (the backlog, which survives any Stripe outage); `sent_units` says which went."""

    identifier = models.CharField(max_length=60, unique=True)
    stripe_customer_id = models.CharField(max_length=100)
    quantities = models.JSONField(default=dict)
    sent_units = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["tenant", "created_at"],
                name="billing_report_unsent",
                condition=models.Q(sent_at=None),
            )
        ]

    def __str__(self) -> str:
        return self.identifier

    def event_identifier(self, unit: str) -> str:
        return f"{self.identifier}-{unit}"
