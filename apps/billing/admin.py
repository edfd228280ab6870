"""Operators' admin for billing: the plans (editable), each team's billing account (its Stripe
state read-only, a manual plan override with a reason), and the webhook events applied."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.billing.models import BillingAccount, BillingStripeEvent, Plan
from apps.billing.plans import plan_free, plan_rate_limit_forget
from apps.core.admin import OperatorAdmin


@admin.register(Plan)
class PlanAdmin(OperatorAdmin):
    list_display = [
        "slug",
        "name",
        "is_public",
        "monthly_price_cents",
        "included_tokens",
        "included_tool_calls",
        "rate_limit_per_minute",
        "overage_allowed",
        "stripe_price_id",
    ]
    search_fields = ["slug", "name", "stripe_price_id"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: Plan, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        plan_rate_limit_forget()  # this process sees a new rate limit at once, others within seconds


class BillingAccountForm(forms.ModelForm):
    class Meta:
        model = BillingAccount
        fields = ["tenant", "override_plan", "override_reason"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("override_plan") and not (cleaned.get("override_reason") or "").strip():
            self.add_error("override_reason", "Say why this team's plan is overridden.")
        return cleaned


@admin.register(BillingAccount)
class BillingAccountAdmin(OperatorAdmin):
    form = BillingAccountForm
    list_display = [
        "tenant",
        "plan",
        "override_plan",
        "status",
        "period_end",
        "grace_until",
        "stripe_customer_id",
        "stripe_subscription_id",
    ]
    list_filter = ["status", "plan", "override_plan"]
    search_fields = ["tenant__slug", "tenant__name", "stripe_customer_id", "stripe_subscription_id"]
    # What Stripe's webhooks wrote is never edited by hand: Stripe is the source of truth. An
    # operator changes a team's plan with the override (and its reason) instead.
    readonly_fields = [
        "effective",
        "plan",
        "status",
        "period_start",
        "period_end",
        "grace_until",
        "stripe_customer_id",
        "stripe_subscription_id",
        "stripe_state_at",
        "created_at",
        "updated_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[BillingAccount]:
        return super().get_queryset(request).select_related("tenant", "plan", "override_plan")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "tenant"] if obj is not None else fields

    @admin.display(description="effective plan")
    def effective(self, obj: BillingAccount) -> str:
        return obj.effective_plan.slug if obj.pk else "free"

    def save_model(self, request: HttpRequest, obj: BillingAccount, form: Any, change: bool) -> None:
        if not change:
            obj.plan = plan_free()  # a new account starts on free; Stripe's webhooks move it
        if obj.override_plan is None:
            obj.override_reason = obj.override_reason.strip()
        super().save_model(request, obj, form, change)
        plan_rate_limit_forget(obj.tenant_id)


@admin.register(BillingStripeEvent)
class BillingStripeEventAdmin(OperatorAdmin):
    list_display = ["event_id", "type", "tenant", "outcome", "received_at"]
    list_filter = ["type"]
    search_fields = ["event_id", "tenant__slug"]
    readonly_fields = ["event_id", "type", "tenant", "created", "received_at", "outcome"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
