"""Link each paid plan to Stripe: a Product (id `slop_plan_<slug>`) and its flat monthly Price,
found again by its lookup key (`slop_<slug>_monthly`) so running it twice creates nothing new.

Prices are immutable at Stripe: when a plan's monthly price (or the currency) changes, a new
Price is created, takes over the lookup key, and the plan points at it; subscriptions already on
the old one keep it until they are changed in Stripe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings

from apps.billing.models import Plan
from apps.billing.plans import plan_is_paid
from apps.billing.stripe_api import as_dict, call, stripe_client, stripe_error


@dataclass(frozen=True)
class PlanSync:
    plan: str
    product: str
    price: str
    what: str  # "linked" (already right), "found" (by lookup key), "created", "replaced"

    def __str__(self) -> str:
        return f"{self.plan}: product {self.product}, price {self.price} ({self.what})"


def _product_id(plan: Plan) -> str:
    return f"slop_plan_{plan.slug}"


def _lookup_key(plan: Plan) -> str:
    return f"slop_{plan.slug}_monthly"


def _matches(price: dict[str, Any], plan: Plan, currency: str) -> bool:
    recurring = price.get("recurring") or {}
    return (
        bool(price.get("active", True))
        and price.get("unit_amount") == plan.monthly_price_cents
        and str(price.get("currency", "")).lower() == currency
        and recurring.get("interval") == "month"
        and int(recurring.get("interval_count") or 1) == 1
    )


def _ensure_product(client: stripe.StripeClient, plan: Plan) -> str:
    product_id = _product_id(plan)
    try:
        client.v1.products.retrieve(product_id)
        return product_id
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 404:
            raise stripe_error(exc) from None
    except stripe.StripeError as exc:
        raise stripe_error(exc) from None
    call(
        lambda: client.v1.products.create(
            params={"id": product_id, "name": f"SLOP {plan.name}", "metadata": {"slop_plan": plan.slug}}
        )
    )
    return product_id


def _retrieve_price(client: stripe.StripeClient, price_id: str) -> dict[str, Any] | None:
    try:
        return as_dict(client.v1.prices.retrieve(price_id))
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise stripe_error(exc) from None
    except stripe.StripeError as exc:
        raise stripe_error(exc) from None


def plan_sync(*, plan: Plan, client: stripe.StripeClient | None = None) -> PlanSync:
    """Make sure the plan has a Stripe Product and a monthly Price for what it costs."""
    client = client or stripe_client()
    currency = (settings.SLOP_BILLING_CURRENCY or "usd").lower()
    product_id = _ensure_product(client, plan)
    if plan.stripe_price_id:
        current = _retrieve_price(client, plan.stripe_price_id)
        if current is not None and _matches(current, plan, currency):
            return PlanSync(plan.slug, product_id, plan.stripe_price_id, "linked")
    listed = call(lambda: client.v1.prices.list(params={"lookup_keys": [_lookup_key(plan)], "limit": 10}))
    found = next(
        (p for p in as_dict(listed).get("data", []) if isinstance(p, dict) and _matches(p, plan, currency)),
        None,
    )
    if found is not None:
        what, price_id = "found", str(found["id"])
    else:
        created = call(
            lambda: client.v1.prices.create(
                params={
                    "product": product_id,
                    "unit_amount": plan.monthly_price_cents,
                    "currency": currency,
                    "recurring": {"interval": "month"},
                    "lookup_key": _lookup_key(plan),
                    "transfer_lookup_key": True,
                    "nickname": f"{plan.name} monthly",
                    "metadata": {"slop_plan": plan.slug},
                }
            )
        )
        what = "replaced" if plan.stripe_price_id else "created"
        price_id = str(created.id)
    plan.stripe_price_id = price_id
    plan.save(update_fields=["stripe_price_id", "updated_at"])
    return PlanSync(plan.slug, product_id, price_id, what)


def plans_sync(*, slugs: list[str] | None = None) -> list[PlanSync]:
    client = stripe_client()
    plans = [plan for plan in Plan.objects.all() if plan_is_paid(plan) and plan.monthly_price_cents > 0]
    if slugs:
        plans = [plan for plan in plans if plan.slug in slugs]
    return [plan_sync(plan=plan, client=client) for plan in plans]
