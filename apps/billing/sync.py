"""Link each paid plan to Stripe: a Product (id `slop_plan_<slug>`) and its flat monthly Price,
found again by its lookup key (`slop_<slug>_monthly`) so running it twice creates nothing new; and,
for a plan whose overage is on, one metered Price per unit it prices (`unit_prices`: input and
output tokens, tool calls, job seconds) on that unit's Billing Meter (made when missing, the
meters usage is reported to), found again by `slop_<slug>_<unit>`.

A metered price bills what the meter counted in the period, at the plan's unit price (per million
units, in the currency's major unit; sent as `unit_amount_decimal` in cents per unit, which
Stripe takes to 12 decimals). What the plan includes of that unit is a free first tier
(`tiers_mode=graduated`), so Stripe bills only past it. Tokens are included as one allowance for
input and output together, which per-meter tiers cannot express: each token meter gets the whole
allowance free (never billing what the plan includes; the /billing estimate, which splits the
allowance in proportion, may be higher).

Prices are immutable at Stripe: when a plan's monthly price (or the currency, a unit price, an
allowance, the meter) changes, a new Price is created, takes over the lookup key, and the plan
points at it; subscriptions already on the old one keep it until they are changed in Stripe."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import stripe
from django.conf import settings

from apps.billing.models import Plan
from apps.billing.plans import plan_is_paid
from apps.billing.reporting import UNIT_NAMES, UNITS, ensure_meters, event_name
from apps.billing.stripe_api import as_dict, call, stripe_client, stripe_error
from apps.core.errors import ApplicationError


@dataclass(frozen=True)
class PlanSync:
    plan: str
    product: str
    price: str
    what: str  # "linked" (already right), "found" (by lookup key), "created", "replaced"
    # unit -> (price id, what), for the plan's metered prices
    metered: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __str__(self) -> str:
        line = f"{self.plan}: product {self.product}, price {self.price} ({self.what})"
        for unit, (price, what) in self.metered.items():
            line += f"\n{self.plan}: metered {unit} price {price} ({what})"
        return line


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


def plan_sync(
    *, plan: Plan, client: stripe.StripeClient | None = None, meters: dict[str, str] | None = None
) -> PlanSync:
    """Make sure the plan has a Stripe Product, a monthly Price for what it costs, and a metered
    Price per unit it bills past what it includes (`meters`: event name → meter id, made when
    missing)."""
    client = client or stripe_client()
    flat = _flat_price_sync(plan, client)
    metered = _metered_prices_sync(plan, client, meters)
    return PlanSync(flat.plan, flat.product, flat.price, flat.what, metered)


def _flat_price_sync(plan: Plan, client: stripe.StripeClient) -> PlanSync:
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


# --- metered prices ------------------------------------------------------------------------------

MILLION = Decimal(1_000_000)


def _unit_amount_decimal(plan: Plan, unit: str) -> str | None:
    """The plan's price of one unit in the currency's minor unit (cents), as Stripe's
    `unit_amount_decimal` (at most 12 decimals); None when the plan does not price the unit."""
    raw = (plan.unit_prices or {}).get(unit)
    if raw in (None, ""):
        return None
    try:
        per_unit = Decimal(str(raw)) * 100 / MILLION
    except InvalidOperation:
        raise ApplicationError(
            f"Plan {plan.slug!r}: unit_prices[{unit!r}] is not a number ({raw!r})", code="invalid_plan"
        ) from None
    if per_unit < 0:
        raise ApplicationError(f"Plan {plan.slug!r}: unit_prices[{unit!r}] is negative", code="invalid_plan")
    if per_unit == 0:
        return None
    quantized = per_unit.quantize(Decimal("1e-12"))
    if quantized == 0:
        raise ApplicationError(
            f"Plan {plan.slug!r}: unit_prices[{unit!r}] is below what Stripe can bill per unit "
            "(0.000000000001 of a cent)",
            code="invalid_plan",
        )
    text = format(quantized.normalize(), "f")
    return text


def _included(plan: Plan, unit: str) -> int:
    if unit in ("input_tokens", "output_tokens"):
        return int(plan.included_tokens or 0)
    if unit == "tool_calls":
        return int(plan.included_tool_calls or 0)
    return 0


def _metered_params(plan: Plan, unit: str, amount: str, meter_id: str, currency: str, product: str) -> Any:
    included = _included(plan, unit)
    params: dict[str, Any] = {
        "product": product,
        "currency": currency,
        "recurring": {"interval": "month", "usage_type": "metered", "meter": meter_id},
        "lookup_key": _metered_lookup_key(plan, unit),
        "transfer_lookup_key": True,
        "nickname": f"{plan.name} {UNIT_NAMES[unit]}",
    }
    if included:
        params["billing_scheme"] = "tiered"
        params["tiers_mode"] = "graduated"
        params["tiers"] = [
            {"up_to": included, "unit_amount": 0},
            {"up_to": "inf", "unit_amount_decimal": amount},
        ]
    else:
        params["billing_scheme"] = "per_unit"
        params["unit_amount_decimal"] = amount
    # What the price must be, in its metadata: a later run finds it again by comparing this
    # (Stripe returns a tiered price's tiers only when expanded; metadata always).
    spec = json.dumps({k: params[k] for k in sorted(params) if k not in ("transfer_lookup_key", "nickname")})
    params["metadata"] = {
        "slop_plan": plan.slug,
        "slop_unit": unit,
        "slop_spec": hashlib.sha256(spec.encode()).hexdigest()[:32],
    }
    return params


def _metered_lookup_key(plan: Plan, unit: str) -> str:
    return f"slop_{plan.slug}_{unit}"


def _metered_matches(price: dict[str, Any], params: dict[str, Any]) -> bool:
    recurring = price.get("recurring") or {}
    return (
        bool(price.get("active", True))
        and (price.get("metadata") or {}).get("slop_spec") == params["metadata"]["slop_spec"]
        and recurring.get("meter") == params["recurring"]["meter"]
        and recurring.get("usage_type") == "metered"
    )


def _metered_prices_sync(
    plan: Plan, client: stripe.StripeClient, meters: dict[str, str] | None
) -> dict[str, tuple[str, str]]:
    wanted = {unit: amount for unit in UNITS if (amount := _unit_amount_decimal(plan, unit))}
    if not plan.overage_allowed or not wanted:
        if plan.stripe_metered_prices:  # nothing to bill past what is included any more
            plan.stripe_metered_prices = {}
            plan.save(update_fields=["stripe_metered_prices", "updated_at"])
        return {}
    if meters is None:
        meters = call(lambda: ensure_meters(client))
    currency = (settings.SLOP_BILLING_CURRENCY or "usd").lower()
    product = _product_id(plan)
    linked: dict[str, str] = {}
    done: dict[str, tuple[str, str]] = {}
    for unit, amount in wanted.items():
        params = _metered_params(plan, unit, amount, meters[event_name(unit)], currency, product)
        current_id = (plan.stripe_metered_prices or {}).get(unit)
        if current_id:
            current = _retrieve_price(client, str(current_id))
            if current is not None and _metered_matches(current, params):
                linked[unit], done[unit] = str(current_id), (str(current_id), "linked")
                continue
        listed = call(
            functools.partial(
                client.v1.prices.list, params={"lookup_keys": [params["lookup_key"]], "limit": 10}
            )
        )
        found = next(
            (
                p
                for p in as_dict(listed).get("data", [])
                if isinstance(p, dict) and _metered_matches(p, params)
            ),
            None,
        )
        if found is not None:
            linked[unit], done[unit] = str(found["id"]), (str(found["id"]), "found")
            continue
        created = call(functools.partial(client.v1.prices.create, params=params))
        linked[unit] = str(created.id)
        done[unit] = (str(created.id), "replaced" if current_id else "created")
    if linked != plan.stripe_metered_prices:
        plan.stripe_metered_prices = linked
        plan.save(update_fields=["stripe_metered_prices", "updated_at"])
    return done


def plans_sync(*, slugs: list[str] | None = None) -> list[PlanSync]:
    client = stripe_client()
    plans = [plan for plan in Plan.objects.all() if plan_is_paid(plan) and plan.monthly_price_cents > 0]
    if slugs:
        plans = [plan for plan in plans if plan.slug in slugs]
    meters: dict[str, str] | None = None
    if any(plan.overage_allowed and plan.unit_prices for plan in plans):
        meters = call(lambda: ensure_meters(client))  # once for every plan
    return [plan_sync(plan=plan, client=client, meters=meters) for plan in plans]
