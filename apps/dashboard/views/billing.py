"""The billing page (owners only): the plan and its status, the period, included against used, the
next invoice estimate (GET /billing's `billing_overview`), the plans to choose from; "Upgrade"
starts a Stripe Checkout Session and "Manage billing" a Customer Portal session through the billing
service (apps/billing/subscriptions.py), then sends the browser to Stripe. What the service refuses
(Stripe not configured, unreachable, a subscription already live) is shown on the page."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime

from apps.billing.accounts import account_for
from apps.billing.models import BillingAccount, Plan
from apps.billing.plans import plan_is_paid
from apps.billing.selectors import billing_overview
from apps.billing.subscriptions import LIVE_STATUSES, billing_checkout_create, billing_portal_create
from apps.core.errors import ApplicationError
from apps.dashboard.teams import TeamPage
from apps.dashboard.views.usage import QUANTITIES, amount_text, quota_bars, require
from apps.tenants.roles import Role

Status = BillingAccount.Status

STATUS_TEXT: dict[str, str] = {
    Status.NONE: "No subscription: the team is on the free plan.",
    Status.ACTIVE: "Active.",
    Status.TRIALING: "Trial.",
    Status.PAST_DUE: "Payment failed.",
    Status.CANCELED: "Cancelled.",
}


class SeeOther(HttpResponseRedirect):
    """After a POST, the browser GETs the next page (Stripe's, or this one)."""

    status_code = 303
    allowed_schemes = ["https", "http"]


def _plan_offer(plan: Plan, current: Plan) -> dict[str, Any]:
    included = [
        {"label": label, "text": amount_text(getattr(plan, f"included_{key}"), unit)}
        for key, label, unit in QUANTITIES
    ]
    return {
        "slug": plan.slug,
        "name": plan.name,
        "price": f"{Decimal(plan.monthly_price_cents) / 100:,.2f}",
        "paid": plan_is_paid(plan),
        "current": plan.pk == current.pk,
        "overage": plan.overage_allowed,
        "included": included,
    }


class Billing(TeamPage):
    role = Role.OWNER

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        require(self, "billing", "read")
        overview = billing_overview(tenant=self.team)
        account = account_for(self.team)
        plan = account.effective_plan
        live = account.status in LIVE_STATUSES and bool(account.stripe_subscription_id)
        context = self.team_context(
            overview=overview,
            account=account,
            status_text=STATUS_TEXT.get(account.status, account.status),
            period_start=parse_datetime(overview["period_start"]),
            period_end=parse_datetime(overview["period_end"]),
            invoice_date=parse_datetime(overview["next_invoice"]["date"]),
            bars=quota_bars(overview),
            plans=[_plan_offer(p, plan) for p in Plan.objects.filter(is_public=True)],
            subscribed=live,
            has_customer=bool(account.stripe_customer_id),
            overridden=account.override_plan_id is not None,
        )
        return render(request, "dashboard/billing/page.html", context)


def _refuse_unknown(request: HttpRequest, allowed: set[str]) -> str | None:
    unknown = sorted(set(request.POST) - allowed - {"csrfmiddlewaretoken"})
    return f"Unknown field {unknown[0]!r}" if unknown else None


class Checkout(TeamPage):
    """POST plan=<slug>: a Checkout Session for that plan; the browser goes on to Stripe."""

    role = Role.OWNER

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        require(self, "billing", "write")
        problem = _refuse_unknown(request, {"plan"})
        plan = request.POST.get("plan", "").strip()
        if problem is None and not plan:
            problem = "Choose a plan to upgrade to"
        if problem is not None:
            messages.error(request, f"{problem}: nothing was changed.")
            return redirect("dashboard:billing", team=self.team.slug)
        try:
            url = billing_checkout_create(tenant=self.team, plan_slug=plan)
        except ApplicationError as exc:
            messages.error(request, f"Could not start the checkout: {exc.message}")
            return redirect("dashboard:billing", team=self.team.slug)
        return SeeOther(url)


class Portal(TeamPage):
    """POST: a Customer Portal session (invoices, payment method, plan changes, cancellation)."""

    role = Role.OWNER

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        require(self, "billing", "write")
        problem = _refuse_unknown(request, set())
        if problem is not None:
            messages.error(request, f"{problem}: nothing was changed.")
            return redirect("dashboard:billing", team=self.team.slug)
        try:
            url = billing_portal_create(tenant=self.team)
        except ApplicationError as exc:
            messages.error(request, f"Could not open the billing portal: {exc.message}")
            return redirect("dashboard:billing", team=self.team.slug)
        return SeeOther(url)
