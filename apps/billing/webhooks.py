"""Stripe's webhook for team billing (/billing/webhook): verify, then apply each event once.

The subscription's state comes only from here. Each event's BillingStripeEvent row is inserted in
the same transaction as the change it makes, so a redelivery is acknowledged and changes nothing,
and two simultaneous deliveries serialise on the row's unique event id.

Events arrive in any order. The account keeps `stripe_state_at`, the Stripe time (the event's
`created`) of the state it holds; an older observation never overwrites a newer one, and within
one second the more final status wins (canceled over past_due over active). An event about a
subscription other than the team's current one may make a newer active subscription the current
one (subscription and checkout events only) but can never end or degrade the current one.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.billing.accounts import free_plan
from apps.billing.models import BillingAccount, BillingStripeEvent, Plan
from apps.billing.plans import plan_for_price, plan_rate_limit_forget
from apps.billing.stripe_api import not_configured
from apps.billing.subscriptions import grace_deadline
from apps.core.stripe_webhooks import stripe_event_verified

logger = logging.getLogger(__name__)

Status = BillingAccount.Status

SUBSCRIPTION_EVENTS = {
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
}
# invoice.payment_succeeded is what older API versions (and localstripe) send for invoice.paid.
INVOICE_PAID_EVENTS = {"invoice.paid", "invoice.payment_succeeded"}
INVOICE_FAILED_EVENTS = {"invoice.payment_failed"}
CHECKOUT_EVENTS = {"checkout.session.completed"}
HANDLED_EVENTS = SUBSCRIPTION_EVENTS | INVOICE_PAID_EVENTS | INVOICE_FAILED_EVENTS | CHECKOUT_EVENTS

# Stripe's subscription statuses → ours (None: not a state to act on yet).
SUBSCRIPTION_STATUS = {
    "active": Status.ACTIVE,
    "trialing": Status.TRIALING,
    "past_due": Status.PAST_DUE,
    "unpaid": Status.PAST_DUE,
    "canceled": Status.CANCELED,
    "incomplete_expired": Status.CANCELED,
    "paused": Status.CANCELED,  # no payment is collected: nothing paid for
    "incomplete": None,  # the first payment has not gone through: the plan is not granted yet
}
# Within one second, the more final state wins (events created together, delivered in any order).
RANK: dict[str, int] = {
    Status.NONE: 0,
    Status.ACTIVE: 1,
    Status.TRIALING: 1,
    Status.PAST_DUE: 2,
    Status.CANCELED: 3,
}
LIVE = {Status.ACTIVE, Status.TRIALING, Status.PAST_DUE}


def verify_event(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event, if Stripe signed exactly these bytes with the billing endpoint's secret; else 400."""
    secret = settings.STRIPE_BILLING_WEBHOOK_SECRET
    if not secret:
        raise not_configured(
            "STRIPE_BILLING_WEBHOOK_SECRET", "the signing secret of the /billing/webhook endpoint, whsec_…"
        )
    return stripe_event_verified(payload=payload, signature=signature, secret=secret)


# --- What an event says ------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """The state of one subscription as an event reports it."""

    customer_id: str
    subscription_id: str
    status: str | None  # ours; None: keep the status
    plan: Plan | None  # None: keep the plan (price not one of ours, or not in the event)
    tenant_hint: str = ""  # metadata.slop_tenant / client_reference_id: finds an account by tenant
    # Whether it may make its subscription the team's current one (a subscription or checkout
    # event may; an invoice only ever concerns the subscription it bills).
    may_switch: bool = True
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None


def _id(value: Any) -> str:
    """An id, whether Stripe sent it bare or expanded into its object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _when(value: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, tz=dt.UTC) if isinstance(value, int) and value > 0 else None


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _price_of(item: dict[str, Any]) -> str:
    """The price of a subscription item or invoice line (`price`, legacy `plan`, or the newer
    `pricing.price_details.price`)."""
    for key in ("price", "plan"):
        found = _id(item.get(key))
        if found:
            return found
    pricing = item.get("pricing")
    details = pricing.get("price_details") if isinstance(pricing, dict) else None
    return _id(details.get("price")) if isinstance(details, dict) else ""


def _plan_among(items: Any) -> Plan | None:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            plan = plan_for_price(_price_of(item))
            if plan is not None:
                return plan
    return None


def _list_data(value: Any) -> list[Any]:
    data = value.get("data") if isinstance(value, dict) else None
    return data if isinstance(data, list) else []


def _from_subscription(event_type: str, obj: dict[str, Any]) -> Observation:
    items = _list_data(obj.get("items"))
    first = items[0] if items and isinstance(items[0], dict) else {}
    # Newer API versions keep the period on each item, older ones on the subscription.
    start = obj.get("current_period_start") or first.get("current_period_start")
    end = obj.get("current_period_end") or first.get("current_period_end")
    status = SUBSCRIPTION_STATUS.get(str(obj.get("status") or ""))
    if event_type == "customer.subscription.deleted":
        status = Status.CANCELED
    return Observation(
        customer_id=_id(obj.get("customer")),
        subscription_id=_id(obj.get("id")),
        status=status,
        plan=_plan_among(items),
        tenant_hint=str(_metadata(obj).get("slop_tenant") or ""),
        period_start=_when(start),
        period_end=_when(end),
    )


def _invoice_subscription(obj: dict[str, Any]) -> str:
    found = _id(obj.get("subscription"))
    if found:
        return found
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    return _id(details.get("subscription")) if isinstance(details, dict) else ""


def _from_invoice(event_type: str, obj: dict[str, Any]) -> Observation | None:
    subscription_id = _invoice_subscription(obj)
    if not subscription_id:
        return None  # a one-off invoice: no subscription's state depends on it
    lines = _list_data(obj.get("lines"))
    periods = [line.get("period") for line in lines if isinstance(line, dict)]
    period: dict[str, Any] = next((found for found in periods if isinstance(found, dict)), {})
    paid = event_type in INVOICE_PAID_EVENTS
    return Observation(
        customer_id=_id(obj.get("customer")),
        subscription_id=subscription_id,
        status=Status.ACTIVE if paid else Status.PAST_DUE,
        plan=_plan_among(lines) if paid else None,
        may_switch=False,
        period_start=_when(period.get("start")) if paid else None,
        period_end=_when(period.get("end")) if paid else None,
    )


def _from_checkout(obj: dict[str, Any]) -> Observation | None:
    if obj.get("mode") != "subscription":
        return None
    metadata = _metadata(obj)
    plan = Plan.objects.filter(slug=str(metadata.get("slop_plan") or "")).first()
    paid = obj.get("payment_status") in ("paid", "no_payment_required")
    return Observation(
        customer_id=_id(obj.get("customer")),
        subscription_id=_id(obj.get("subscription")),
        status=Status.ACTIVE if paid else None,
        plan=plan if paid else None,
        tenant_hint=str(obj.get("client_reference_id") or metadata.get("slop_tenant") or ""),
    )


def _observe(event_type: str, obj: dict[str, Any]) -> Observation | None:
    if event_type in SUBSCRIPTION_EVENTS:
        return _from_subscription(event_type, obj)
    if event_type in INVOICE_PAID_EVENTS | INVOICE_FAILED_EVENTS:
        return _from_invoice(event_type, obj)
    if event_type in CHECKOUT_EVENTS:
        return _from_checkout(obj)
    return None


# --- Applying it -------------------------------------------------------------------------------


def _account_for(observation: Observation) -> BillingAccount | None:
    """The account the event is about, locked: by Stripe customer, else by the tenant id we put in
    the metadata (a customer whose create answer was lost). Crossing tenants on purpose: the
    platform's Stripe account bills every team."""
    rows = BillingAccount.objects.unscoped().select_for_update().select_related("plan")
    if observation.customer_id:
        found = rows.filter(stripe_customer_id=observation.customer_id).first()
        if found is not None:
            return found
    if observation.tenant_hint.isdigit():
        found = rows.filter(tenant_id=int(observation.tenant_hint)).first()
        if found is not None and found.stripe_customer_id in ("", observation.customer_id):
            return found
    return None


def _stale(account: BillingAccount, observation: Observation, at: dt.datetime) -> str | None:
    """Why the observation must not be applied, or None."""
    current = account.stripe_subscription_id
    if current and observation.subscription_id and observation.subscription_id != current:
        if not observation.may_switch or observation.status not in (Status.ACTIVE, Status.TRIALING):
            return "kept: about a subscription that is not the team's current one"
        if account.status in LIVE and account.stripe_state_at is not None and at <= account.stripe_state_at:
            return "kept: an older subscription than the current one"
        return None  # a newer live subscription replaces an ended (or older) one
    if account.stripe_state_at is not None:
        if at < account.stripe_state_at:
            return "kept: older than the state applied"
        new_rank = RANK.get(observation.status, 0) if observation.status else 0
        if at == account.stripe_state_at and new_rank < RANK.get(account.status, 0):
            return "kept: a more final state of the same moment"
    return None


def _apply(account: BillingAccount, observation: Observation, at: dt.datetime) -> str:
    reason = _stale(account, observation, at)
    if reason is not None:
        return reason
    if observation.status is None:
        # Not a state to grant a plan on (an incomplete first payment): remember the link only.
        if observation.subscription_id and not account.stripe_subscription_id:
            account.stripe_subscription_id = observation.subscription_id
        if observation.customer_id and not account.stripe_customer_id:
            account.stripe_customer_id = observation.customer_id
        account.save()
        return f"kept: {account.status}"
    if observation.customer_id:
        account.stripe_customer_id = observation.customer_id
    if observation.subscription_id:
        account.stripe_subscription_id = observation.subscription_id
    account.status = observation.status
    account.stripe_state_at = at
    if observation.period_start is not None:
        account.period_start = observation.period_start
    if observation.period_end is not None:
        account.period_end = observation.period_end
    if observation.status == Status.CANCELED:
        account.plan = free_plan()
        account.grace_until = None
    elif observation.status == Status.PAST_DUE:
        # The grace period runs from the first failure; retries that fail again do not extend it.
        if account.grace_until is None:
            account.grace_until = grace_deadline(at)
        if observation.plan is not None:
            account.plan = observation.plan
    else:
        account.grace_until = None
        if observation.plan is not None:
            account.plan = observation.plan
    account.save()
    return f"applied: {account.plan.slug} {account.status}"


def billing_event_apply(*, event: dict[str, Any]) -> str:
    """Apply a verified event once; returns what happened ("applied: …", "duplicate", "kept: …",
    "ignored: …"), which is also kept on the event's ledger row."""
    event_id, event_type = event["id"], event["type"]
    created: int = event["created"] if isinstance(event.get("created"), int) else 0
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = BillingStripeEvent.objects.create(
                    event_id=event_id, type=event_type[:100], created=created
                )
        except IntegrityError:
            return "duplicate"
        observation = _observe(event_type, obj) if isinstance(obj, dict) else None
        if event_type not in HANDLED_EVENTS:
            outcome = "ignored: event type not used"
        elif observation is None:
            outcome = "ignored: nothing a subscription state depends on"
        else:
            account = _account_for(observation)
            if account is None:
                outcome = "ignored: no team of ours"
            else:
                outcome = _apply(account, observation, _when(created) or dt.datetime.now(tz=dt.UTC))
                row.tenant_id = account.tenant_id
                transaction.on_commit(lambda: plan_rate_limit_forget(account.tenant_id))
        row.outcome = outcome[:200]
        row.save(update_fields=["outcome", "tenant"])
    logger.info("Billing event %s (%s): %s", event_id, event_type, outcome)
    return outcome
