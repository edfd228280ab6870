"""A local server speaking Stripe's wire protocol for what localstripe lacks: Billing Meters and
meter events (with their event summaries), Checkout Sessions and Customer Portal sessions. Every
other path is reverse-proxied to a localstripe instance, so the official `stripe` SDK with one
`api_base` works for everything.

Wire protocol as Stripe's: form-encoded bodies with bracketed nesting (`payload[value]=5`,
`line_items[0][price]=price_…`), `Authorization: Bearer sk_…`, JSON objects with `object` and `id`,
lists as `{"object": "list", "data", "has_more", "url"}`, errors as
`{"error": {"type", "code", "message", "param"}}` with Stripe's status codes, and `Idempotency-Key`
replays on POST.

Meter events as Stripe documents them: integer values only, the payload must carry the meter's
customer and value keys, the timestamp within the past 35 days or 5 minutes ahead, and the
`identifier` unique: a second event with the same identifier is refused (400,
`resource_already_exists`) and never counted. Event summaries need minute-aligned `start_time` /
`end_time` and a `customer`; `value_grouping_window=hour|day` splits them. Unlike Stripe (which
aggregates asynchronously) summaries here are up to date at once.

Prices: localstripe knows only the older Plan object, which Stripe's Price replaced (in Stripe a
price's id works as a plan id). `/v1/prices` here stores each price as a localstripe Plan with the
price's id and answers Price objects; `items[n][price]` on subscriptions becomes `items[n][plan]`
on the way to localstripe, and every proxied object that carries a `plan` also gets its `price`.
Prices take Stripe's pricing parameters (`unit_amount` or `unit_amount_decimal`; `billing_scheme=
tiered` with `tiers_mode` and `tiers`, answered only under `expand[]=tiers`; `recurring[usage_type]
=metered` with the `recurring[meter]` it is billed by, required as in Stripe's current API) and
`lookup_key` with `transfer_lookup_key`. localstripe bills whole amounts, licensed plans and
one-item subscriptions only: a price it cannot bill is a 0 licensed plan there, and a subscription
made by Checkout keeps its items past the first here (`fake.extra_items`), added to the
subscription wherever this server answers it (localstripe's own webhooks show the first only).

For tests, the server's state is plain Python (it runs in a thread of the test process):
`fake.meter_events` (accepted), `fake.rejected_duplicates`, `fake.outage` (a status code every
billing-meter request answers with while set, to simulate Stripe being down), and
`POST /_fake/checkout/sessions/:id/complete` finishes a subscription-mode Checkout Session: it
creates the subscription in localstripe (which sends its own webhooks) and marks the session
`complete` with `subscription` set.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import web

from tests.conftest import free_port

DEFAULT_SECRET_KEY = "sk_test_slop_platform"
_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}
_SEGMENT = re.compile(r"\[([^\]]*)\]")


class StripeError(Exception):
    def __init__(
        self, message: str, *, status: int = 400, code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": "invalid_request_error", "message": message}
        if code:
            self.body["code"] = code
        if param:
            self.body["param"] = param
        if status >= 500:
            self.body["type"] = "api_error"


@dataclass
class FakeStripe:
    url: str
    localstripe_url: str
    secret_keys: set[str]
    meters: dict[str, dict[str, Any]] = field(default_factory=dict)
    meter_events: list[dict[str, Any]] = field(default_factory=list)
    rejected_duplicates: list[dict[str, Any]] = field(default_factory=list)
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkout_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    portal_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A subscription's items past its first, which localstripe cannot hold (it keeps one item a
    # subscription): added to the subscription wherever this server answers it.
    extra_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    outage: int | None = None  # while set, every /v1/billing/meter* request answers this status
    idempotent: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop | None = None
    runner: web.AppRunner | None = None
    handlers: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.meters.clear()
            self.meter_events.clear()
            self.rejected_duplicates.clear()
            self.checkout_sessions.clear()
            self.portal_sessions.clear()
            self.extra_items.clear()  # prices stay: they live in localstripe, which persists
            self.idempotent.clear()
            self.outage = None

    def total(self, event_name: str, customer: str | None = None) -> int:
        """What Stripe would have counted for an event name (and customer)."""
        meter = next((m for m in self.meters.values() if m["event_name"] == event_name), None)
        customer_key = meter["customer_mapping"]["event_payload_key"] if meter else "stripe_customer_id"
        value_key = meter["value_settings"]["event_payload_key"] if meter else "value"
        return sum(
            int(e["payload"][value_key])
            for e in self.meter_events
            if e["event_name"] == event_name and (customer is None or e["payload"][customer_key] == customer)
        )


# ---- wire helpers -------------------------------------------------------------------------------


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's bracketed form encoding into nested dicts and lists (`a[b][0][c]=1`, `expand[]=x`)."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        head = raw_key.split("[", 1)[0]
        path = [head, *_SEGMENT.findall(raw_key[len(head) :])]
        node: Any = root
        for index, part in enumerate(path):
            last = index == len(path) - 1
            following = None if last else path[index + 1]
            child_default: Any = [] if following == "" or (following or "").isdigit() else {}
            if isinstance(node, list):
                if part == "":
                    if last:
                        node.append(value)
                        break
                    node.append(child_default)
                    node = node[-1]
                    continue
                position = int(part)
                while len(node) <= position:
                    node.append(None)
                if last:
                    node[position] = value
                else:
                    if node[position] is None:
                        node[position] = child_default
                    node = node[position]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, child_default)
    return root


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _required(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value in (None, "", {}):
        raise StripeError(f"Missing required param: {name}.", code="parameter_missing", param=name)
    return value


def _int_param(params: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        if required:
            _required(params, name)
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise StripeError(f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name) from None


def _list(url: str, items: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    limit = _int_param(params, "limit") or 10
    if not 1 <= limit <= 100:
        raise StripeError("Invalid limit: must be between 1 and 100", param="limit")
    after = params.get("starting_after")
    if after:
        ids = [i["id"] for i in items]
        if after not in ids:
            raise StripeError(f"No such object: '{after}'", code="resource_missing", param="starting_after")
        items = items[ids.index(after) + 1 :]
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": url}


# ---- the handlers -------------------------------------------------------------------------------


class _Handlers:
    def __init__(self, fake: FakeStripe) -> None:
        self.fake = fake
        self.session: aiohttp.ClientSession | None = None

    async def localstripe(
        self, method: str, path: str, data: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        assert self.session is not None
        key = next(iter(self.fake.secret_keys))
        form = _flatten(data or {})
        async with self.session.request(
            method,
            f"{self.fake.localstripe_url}{path}",
            data=form if method != "GET" else None,
            params=form if method == "GET" else None,
            headers={"Authorization": f"Bearer {key}"},
        ) as response:
            return response.status, await response.json(content_type=None)

    async def customer_must_exist(self, customer: Any, param: str = "customer") -> None:
        status, _ = await self.localstripe("GET", f"/v1/customers/{customer}")
        if status != 200:
            raise StripeError(f"No such customer: '{customer}'", code="resource_missing", param=param)

    # meters

    def meters_available(self) -> None:
        if self.fake.outage:
            raise StripeError("An error occurred with our connection to Stripe.", status=self.fake.outage)

    async def meter_create(self, params: dict[str, Any]) -> dict[str, Any]:
        self.meters_available()
        display_name = _required(params, "display_name")
        event_name = _required(params, "event_name")
        formula = (_required(params, "default_aggregation") or {}).get("formula")
        if formula not in ("sum", "count", "last"):
            raise StripeError(
                "Invalid default_aggregation[formula]: must be one of sum, count, or last",
                param="default_aggregation[formula]",
            )
        for meter in self.fake.meters.values():
            if meter["event_name"] == event_name and meter["status"] == "active":
                raise StripeError(
                    f"An active meter with event_name `{event_name}` already exists.",
                    code="resource_already_exists",
                    param="event_name",
                )
        now = int(time.time())
        meter = {
            "id": _id("mtr_test"),
            "object": "billing.meter",
            "created": now,
            "customer_mapping": {
                "event_payload_key": (params.get("customer_mapping") or {}).get(
                    "event_payload_key", "stripe_customer_id"
                ),
                "type": "by_id",
            },
            "default_aggregation": {"formula": formula},
            "display_name": display_name,
            "event_name": event_name,
            "event_time_window": params.get("event_time_window"),
            "livemode": False,
            "status": "active",
            "status_transitions": {"deactivated_at": None},
            "updated": now,
            "value_settings": {
                "event_payload_key": (params.get("value_settings") or {}).get("event_payload_key", "value")
            },
        }
        self.fake.meters[meter["id"]] = meter
        return meter

    def meter(self, meter_id: str) -> dict[str, Any]:
        self.meters_available()
        meter = self.fake.meters.get(meter_id)
        if meter is None:
            raise StripeError(
                f"No such billing meter: '{meter_id}'", status=404, code="resource_missing", param="id"
            )
        return meter

    async def meter_list(self, params: dict[str, Any]) -> dict[str, Any]:
        self.meters_available()
        items = sorted(self.fake.meters.values(), key=lambda m: m["created"], reverse=True)
        if params.get("status"):
            items = [m for m in items if m["status"] == params["status"]]
        return _list("/v1/billing/meters", items, params)

    async def meter_event_create(self, params: dict[str, Any]) -> dict[str, Any]:
        self.meters_available()
        event_name = _required(params, "event_name")
        payload = _required(params, "payload")
        if not isinstance(payload, dict):
            raise StripeError("Invalid object", param="payload")
        meter = next(
            (
                m
                for m in self.fake.meters.values()
                if m["event_name"] == event_name and m["status"] == "active"
            ),
            None,
        )
        if meter is None:
            raise StripeError(f"No active meter found for event_name `{event_name}`.", param="event_name")
        customer_key = meter["customer_mapping"]["event_payload_key"]
        value_key = meter["value_settings"]["event_payload_key"]
        if not payload.get(customer_key):
            raise StripeError(
                f"Missing required param: payload[{customer_key}].",
                code="parameter_missing",
                param=f"payload[{customer_key}]",
            )
        if meter["default_aggregation"]["formula"] != "count":
            value = payload.get(value_key)
            if value in (None, ""):
                raise StripeError(
                    f"Missing required param: payload[{value_key}].",
                    code="parameter_missing",
                    param=f"payload[{value_key}]",
                )
            if not re.fullmatch(r"-?\d+", str(value)):
                raise StripeError(
                    f"Invalid payload[{value_key}]: must be a whole number", param=f"payload[{value_key}]"
                )
        now = int(time.time())
        timestamp = _int_param(params, "timestamp") or now
        if timestamp < now - 35 * 86400 or timestamp > now + 300:
            raise StripeError(
                "Timestamp must be within the past 35 calendar days or up to 5 minutes in the future.",
                param="timestamp",
            )
        identifier = params.get("identifier") or _id("ev")
        if len(identifier) > 100:
            raise StripeError("Invalid identifier: must be at most 100 characters", param="identifier")
        event = {
            "object": "billing.meter_event",
            "created": now,
            "event_name": event_name,
            "identifier": identifier,
            "livemode": False,
            "payload": {k: str(v) for k, v in payload.items()},
            "timestamp": timestamp,
        }
        with self.fake.lock:
            if any(e["identifier"] == identifier for e in self.fake.meter_events):
                self.fake.rejected_duplicates.append(event)
                raise StripeError(
                    f"A meter event with identifier `{identifier}` already exists.",
                    code="resource_already_exists",
                    param="identifier",
                )
            self.fake.meter_events.append(event)
        return event

    async def event_summaries(self, meter_id: str, params: dict[str, Any]) -> dict[str, Any]:
        meter = self.meter(meter_id)
        customer = _required(params, "customer")
        start = _int_param(params, "start_time", required=True)
        end = _int_param(params, "end_time", required=True)
        assert start is not None and end is not None
        for name, value in (("start_time", start), ("end_time", end)):
            if value % 60:
                raise StripeError(f"{name} must be aligned with minute boundaries.", param=name)
        if end <= start:
            raise StripeError("end_time must be after start_time.", param="end_time")
        window = params.get("value_grouping_window")
        step = {None: end - start, "": end - start, "hour": 3600, "day": 86400}.get(window)
        if step is None:
            raise StripeError(
                "Invalid value_grouping_window: must be one of day or hour", param="value_grouping_window"
            )
        if window and (start % step or end % step):
            raise StripeError(f"start_time and end_time must be aligned with {window} boundaries.")
        customer_key = meter["customer_mapping"]["event_payload_key"]
        value_key = meter["value_settings"]["event_payload_key"]
        formula = meter["default_aggregation"]["formula"]
        events = [
            e
            for e in self.fake.meter_events
            if e["event_name"] == meter["event_name"] and e["payload"].get(customer_key) == customer
        ]
        summaries = []
        for window_start in range(start, end, step):
            window_end = min(window_start + step, end)
            inside = [e for e in events if window_start <= e["timestamp"] < window_end]
            if formula == "count":
                value: float = len(inside)
            elif formula == "last":
                value = float(inside[-1]["payload"][value_key]) if inside else 0
            else:
                value = sum(int(e["payload"][value_key]) for e in inside)
            summaries.append(
                {
                    "id": f"mtrusg_{meter_id}_{window_start}",
                    "object": "billing.meter_event_summary",
                    "aggregated_value": value,
                    "end_time": window_end,
                    "livemode": False,
                    "meter": meter_id,
                    "start_time": window_start,
                }
            )
        return _list(f"/v1/billing/meters/{meter_id}/event_summaries", summaries, params)

    # prices, kept as localstripe plans

    async def price_create(self, params: dict[str, Any]) -> dict[str, Any]:
        currency = _required(params, "currency")
        product = params.get("product")
        if not product and params.get("product_data"):
            status, created = await self.localstripe("POST", "/v1/products", params["product_data"])
            if status != 200:
                raise StripeError(created["error"]["message"], status=status)
            product = created["id"]
        if not product:
            _required(params, "product")
        recurring = params.get("recurring")
        if not recurring:
            raise StripeError("Only recurring prices are supported by this test server.", param="recurring")
        usage_type = recurring.get("usage_type", "licensed")
        if usage_type not in ("licensed", "metered"):
            raise StripeError(
                "Invalid recurring[usage_type]: must be one of licensed or metered",
                param="recurring[usage_type]",
            )
        meter = recurring.get("meter")
        if usage_type == "metered" and not meter:
            # Since API version 2025-03-31.basil a metered price is always backed by a meter.
            raise StripeError(
                "Missing required param: recurring[meter].",
                code="parameter_missing",
                param="recurring[meter]",
            )
        if meter and usage_type != "metered":
            raise StripeError(
                "recurring[meter] can only be set when recurring[usage_type] is `metered`.",
                param="recurring[meter]",
            )
        if meter:
            self.meter(meter)
        pricing = _pricing(params)
        price_id = _id("price")
        lookup_key = params.get("lookup_key") or None
        if lookup_key:
            holder = next((p for p in self.fake.prices.values() if p["lookup_key"] == lookup_key), None)
            if holder is not None and params.get("transfer_lookup_key") not in ("true", True):
                raise StripeError(
                    f"A price (`{holder['id']}`) already uses that lookup key.",
                    code="lookup_key_exists",
                    param="lookup_key",
                )
        plan = {
            "id": price_id,
            "product": product,
            "currency": currency,
            # localstripe keeps whole amounts only, and cannot invoice a metered plan ("Not
            # implemented"): a decimal, tiered or metered price is a licensed plan at 0 there, so
            # subscriptions carrying it work; its real pricing is on the Price this server answers.
            "amount": pricing["unit_amount"] if usage_type == "licensed" and pricing["unit_amount"] else 0,
            "interval": _required(recurring, "interval"),
            "interval_count": recurring.get("interval_count", 1),
            "usage_type": "licensed",
            "nickname": params.get("nickname") or "",
            "metadata": params.get("metadata") or {},
        }
        status, created = await self.localstripe("POST", "/v1/plans", plan)
        if status != 200:
            raise StripeError(created.get("error", {}).get("message", "invalid price"), status=status)
        if lookup_key:
            for other in self.fake.prices.values():
                if other["lookup_key"] == lookup_key:
                    other["lookup_key"] = None  # transferred
        price = _price_from_plan(created)
        price["lookup_key"] = lookup_key
        price["recurring"].update(meter=meter or None, usage_type=usage_type)
        price.update({k: v for k, v in pricing.items() if k != "tiers"})
        price["_tiers"] = pricing["tiers"]
        self.fake.prices[price_id] = price
        return _price_view(price, params)

    async def price(self, price_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        if price_id in self.fake.prices:
            return _price_view(self.fake.prices[price_id], params or {})
        status, plan = await self.localstripe("GET", f"/v1/plans/{price_id}")
        if status != 200:
            raise StripeError(
                f"No such price: '{price_id}'", status=404, code="resource_missing", param="price"
            )
        return _price_from_plan(plan)

    async def price_list(self, params: dict[str, Any]) -> dict[str, Any]:
        items = sorted(self.fake.prices.values(), key=lambda p: p["created"], reverse=True)
        if params.get("lookup_keys"):
            items = [p for p in items if p["lookup_key"] in params["lookup_keys"]]
        if params.get("product"):
            items = [p for p in items if p["product"] == params["product"]]
        return _list("/v1/prices", [_price_view(p, params) for p in items], params)

    # checkout and portal

    async def checkout_create(self, params: dict[str, Any]) -> dict[str, Any]:
        mode = _required(params, "mode")
        if mode not in ("payment", "setup", "subscription"):
            raise StripeError("Invalid mode: must be one of payment, setup, or subscription", param="mode")
        if params.get("ui_mode", "hosted") == "hosted" and not params.get("success_url"):
            _required(params, "success_url")
        line_items = params.get("line_items") or []
        if mode != "setup" and not line_items:
            raise StripeError(
                "You must provide at least one recurring price in `subscription` mode when using prices."
                if mode == "subscription"
                else "Missing required param: line_items.",
                code="parameter_missing",
                param="line_items",
            )
        for index, item in enumerate(line_items):
            price = (item or {}).get("price")
            if not price:
                raise StripeError(
                    f"Missing required param: line_items[{index}][price].",
                    code="parameter_missing",
                    param=f"line_items[{index}][price]",
                )
            try:
                found = await self.price(price)
            except StripeError:
                raise StripeError(
                    f"No such price: '{price}'", code="resource_missing", param=f"line_items[{index}][price]"
                ) from None
            if mode == "subscription" and not found.get("recurring"):
                raise StripeError(
                    "You must provide at least one recurring price in `subscription` mode when using prices.",
                    param=f"line_items[{index}][price]",
                )
        if params.get("customer"):
            await self.customer_must_exist(params["customer"])
        session_id = _id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": int(time.time()),
            "customer": params.get("customer"),
            "customer_email": params.get("customer_email"),
            "expires_at": int(time.time()) + 86400,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "mode": mode,
            "payment_status": "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": params.get("success_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "_line_items": line_items,
            "_subscription_data": params.get("subscription_data") or {},
        }
        self.fake.checkout_sessions[session_id] = session
        return _public(session)

    def checkout(self, session_id: str) -> dict[str, Any]:
        session = self.fake.checkout_sessions.get(session_id)
        if session is None:
            raise StripeError(
                f"No such checkout.session: '{session_id}'",
                status=404,
                code="resource_missing",
                param="session",
            )
        return session

    async def checkout_complete(self, session_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """What the customer does on the hosted page: pays with a card (`card`, default 4242…),
        then Stripe creates the subscription."""
        session = self.checkout(session_id)
        if session["status"] != "open":
            raise StripeError("This Checkout Session is no longer active.", code="checkout_session_inactive")
        customer = session["customer"]
        if not customer:
            status, created = await self.localstripe(
                "POST", "/v1/customers", {"email": session["customer_email"] or ""}
            )
            customer = created["id"]
        card = params.get("card") or "4242424242424242"
        status, method = await self.localstripe(
            "POST",
            "/v1/payment_methods",
            {"type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"}},
        )
        if status != 200:
            raise StripeError(method.get("error", {}).get("message", "card refused"), status=status)
        await self.localstripe("POST", f"/v1/payment_methods/{method['id']}/attach", {"customer": customer})
        await self.localstripe(
            "POST",
            f"/v1/customers/{customer}",
            {"invoice_settings": {"default_payment_method": method["id"]}},
        )
        if session["mode"] == "subscription":
            items = [
                {"plan": i["price"], **({"quantity": i["quantity"]} if i.get("quantity") else {})}
                for i in session["_line_items"]
            ]
            metadata = session["_subscription_data"].get("metadata") or {}
            status, subscription = await self.localstripe(
                "POST", "/v1/subscriptions", {"customer": customer, "items": items[:1], "metadata": metadata}
            )
            if status != 200:
                raise StripeError(
                    subscription.get("error", {}).get("message", "subscription failed"), status=status
                )
            session["subscription"] = subscription["id"]
            extra = []
            for item in items[1:]:
                price = await self.price(item["plan"])
                extra.append(
                    {
                        "id": _id("si"),
                        "object": "subscription_item",
                        "created": int(time.time()),
                        "metadata": {},
                        "price": price,
                        "subscription": subscription["id"],
                        # Stripe gives a metered item no quantity: the meter says how much.
                        **({} if price["recurring"]["usage_type"] == "metered" else {"quantity": 1}),
                    }
                )
            if extra:
                self.fake.extra_items[subscription["id"]] = extra
        session.update(customer=customer, status="complete", payment_status="paid")
        return _public(session)

    async def portal_create(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = _required(params, "customer")
        await self.customer_must_exist(customer)
        session_id = _id("bps")
        session = {
            "id": session_id,
            "object": "billing_portal.session",
            "configuration": "bpc_test_default",
            "created": int(time.time()),
            "customer": customer,
            "flow": None,
            "livemode": False,
            "locale": params.get("locale"),
            "on_behalf_of": None,
            "return_url": params.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/test_{session_id}",
        }
        self.fake.portal_sessions[session_id] = session
        return session

    # dispatch

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if not path.startswith("/_fake/"):
            refusal = _check_auth(request, self.fake.secret_keys)
            if refusal is not None:
                return refusal
        body = await request.read()
        idempotency_key = request.headers.get("Idempotency-Key")
        if request.method == "POST" and idempotency_key:
            replay = self.fake.idempotent.get(f"{path}:{idempotency_key}")
            if replay is not None:
                return web.json_response(replay[1], status=replay[0], headers={"Idempotent-Replayed": "true"})
        params = decode_form(body.decode() if request.method == "POST" else request.query_string)
        try:
            result = await self.route(request.method, path, params)
        except StripeError as exc:
            status, payload = exc.status, {"error": exc.body}
        else:
            if result is None:
                return await self.proxy(request, body)
            status, payload = 200, result
        if request.method == "POST" and idempotency_key and status < 500:
            self.fake.idempotent[f"{path}:{idempotency_key}"] = (status, payload)
        return web.json_response(payload, status=status, headers={"Request-Id": _id("req")})

    async def route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any] | None:
        parts = path.strip("/").split("/")
        if parts[:3] == ["v1", "billing", "meters"]:
            if len(parts) == 3:
                return await (self.meter_create(params) if method == "POST" else self.meter_list(params))
            if len(parts) == 4 and method == "GET":
                return self.meter(parts[3])
            if len(parts) == 5 and parts[4] == "event_summaries" and method == "GET":
                return await self.event_summaries(parts[3], params)
            if len(parts) == 5 and parts[4] in ("deactivate", "reactivate") and method == "POST":
                meter = self.meter(parts[3])
                active = parts[4] == "reactivate"
                meter.update(
                    status="active" if active else "inactive",
                    updated=int(time.time()),
                    status_transitions={"deactivated_at": None if active else int(time.time())},
                )
                return meter
        elif parts == ["v1", "billing", "meter_events"] and method == "POST":
            return await self.meter_event_create(params)
        elif parts[:2] == ["v1", "prices"]:
            if len(parts) == 2:
                return await (self.price_create(params) if method == "POST" else self.price_list(params))
            if len(parts) == 3 and method == "GET":
                return await self.price(parts[2], params)
        elif parts[:3] == ["v1", "checkout", "sessions"]:
            if len(parts) == 3 and method == "POST":
                return await self.checkout_create(params)
            if len(parts) == 3 and method == "GET":
                items = sorted(self.fake.checkout_sessions.values(), key=lambda s: s["created"], reverse=True)
                if params.get("customer"):
                    items = [s for s in items if s["customer"] == params["customer"]]
                return _list("/v1/checkout/sessions", [_public(s) for s in items], params)
            if len(parts) == 4 and method == "GET":
                return _public(self.checkout(parts[3]))
        elif parts == ["v1", "billing_portal", "sessions"] and method == "POST":
            return await self.portal_create(params)
        elif parts[:3] == ["_fake", "checkout", "sessions"] and len(parts) == 5 and parts[4] == "complete":
            return await self.checkout_complete(parts[3], params)
        else:
            return None
        raise StripeError(f"Unrecognized request URL ({method}: {path}).", status=404)

    async def proxy(self, request: web.Request, body: bytes) -> web.StreamResponse:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        if body and request.path.startswith(("/v1/subscriptions", "/v1/subscription_items")):
            body = _prices_as_plans(body)
        async with self.session.request(
            request.method,
            f"{self.fake.localstripe_url}{request.path_qs}",
            data=body or None,
            headers=headers,
        ) as upstream:
            payload = await upstream.read()
            passed = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() not in _HOP_HEADERS | {"content-encoding", "content-type"}
            }
            if "json" in upstream.headers.get("Content-Type", ""):
                try:
                    document = json.loads(payload)
                except ValueError:
                    pass
                else:
                    document = _with_extra_items(
                        _with_prices(document, self.fake.prices), self.fake.extra_items
                    )
                    return web.json_response(document, status=upstream.status, headers=passed)
            return web.Response(
                body=payload,
                status=upstream.status,
                headers=passed,
                content_type=upstream.headers.get("Content-Type", "application/json").split(";")[0],
            )


def _price_from_plan(plan: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": plan["id"],
        "object": "price",
        "active": plan.get("active", True),
        "billing_scheme": plan.get("billing_scheme", "per_unit"),
        "created": plan.get("created", int(time.time())),
        "currency": plan.get("currency"),
        "livemode": False,
        "lookup_key": None,
        "metadata": plan.get("metadata") or {},
        "nickname": plan.get("nickname"),
        "product": plan.get("product"),
        "recurring": {
            "interval": plan.get("interval"),
            "interval_count": plan.get("interval_count", 1),
            "meter": None,
            "usage_type": plan.get("usage_type", "licensed"),
        },
        "tiers_mode": None,
        "type": "recurring",
        "unit_amount": plan.get("amount"),
        "unit_amount_decimal": None if plan.get("amount") is None else str(plan.get("amount")),
    }


def _pricing(params: dict[str, Any]) -> dict[str, Any]:
    """A price's amounts as Stripe takes them: `unit_amount` (whole minor units) or
    `unit_amount_decimal` (up to 12 decimals) per unit, or `billing_scheme=tiered` with
    `tiers_mode` and `tiers` (each `up_to` a count or `inf`, the last `inf`)."""
    scheme = params.get("billing_scheme") or "per_unit"
    if scheme not in ("per_unit", "tiered"):
        raise StripeError("Invalid billing_scheme: must be one of per_unit or tiered", param="billing_scheme")
    if scheme == "per_unit":
        if params.get("tiers") or params.get("tiers_mode"):
            raise StripeError("Tiers can only be set when billing_scheme is `tiered`.", param="tiers")
        amount = _int_param(params, "unit_amount")
        decimal = _decimal_param(params, "unit_amount_decimal")
        if amount is not None and decimal is not None:
            raise StripeError(
                "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
                param="unit_amount_decimal",
            )
        if decimal is None:
            decimal = str(amount or 0)
        whole = int(decimal) if "." not in decimal else None
        return {
            "billing_scheme": "per_unit",
            "tiers_mode": None,
            "unit_amount": whole,
            "unit_amount_decimal": decimal,
            "tiers": None,
        }
    mode = params.get("tiers_mode")
    if mode not in ("graduated", "volume"):
        raise StripeError(
            "Missing required param: tiers_mode." if not mode else "Invalid tiers_mode",
            code="parameter_missing" if not mode else None,
            param="tiers_mode",
        )
    raw = params.get("tiers")
    if not isinstance(raw, list) or not raw:
        raise StripeError("Missing required param: tiers.", code="parameter_missing", param="tiers")
    if params.get("unit_amount") not in (None, "") or params.get("unit_amount_decimal") not in (None, ""):
        raise StripeError("unit_amount cannot be set when billing_scheme is `tiered`.", param="unit_amount")
    tiers = []
    for index, tier in enumerate(raw):
        tier = tier or {}
        up_to = tier.get("up_to")
        if up_to in (None, ""):
            raise StripeError(
                f"Missing required param: tiers[{index}][up_to].",
                code="parameter_missing",
                param=f"tiers[{index}][up_to]",
            )
        limit = None if up_to == "inf" else _int_param(tier, "up_to")
        amount = _int_param(tier, "unit_amount")
        decimal = _decimal_param(tier, "unit_amount_decimal")
        tiers.append(
            {
                "flat_amount": _int_param(tier, "flat_amount"),
                "flat_amount_decimal": tier.get("flat_amount"),
                "unit_amount": amount if decimal is None else None,
                "unit_amount_decimal": decimal
                if decimal is not None
                else (str(amount) if amount is not None else None),
                "up_to": limit,
            }
        )
    if tiers[-1]["up_to"] is not None or any(t["up_to"] is None for t in tiers[:-1]):
        raise StripeError("The last tier must have `up_to` set to `inf`, and only the last.", param="tiers")
    return {
        "billing_scheme": "tiered",
        "tiers_mode": mode,
        "unit_amount": None,
        "unit_amount_decimal": None,
        "tiers": tiers,
    }


def _decimal_param(params: dict[str, Any], name: str) -> str | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    if not re.fullmatch(r"\d+(\.\d{1,12})?", str(raw)):
        raise StripeError(f"Invalid decimal: {raw}", code="parameter_invalid_decimal", param=name)
    return str(raw)


def _price_view(price: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A stored price as Stripe answers it: `tiers` only when asked for with `expand[]=tiers`
    (or `expand[]=data.tiers` on a list)."""
    view = {k: v for k, v in price.items() if not k.startswith("_")}
    expand = params.get("expand") or []
    if price.get("_tiers") is not None and ({"tiers", "data.tiers"} & set(expand)):
        view["tiers"] = price["_tiers"]
    return view


def _prices_as_plans(body: bytes) -> bytes:
    pairs = parse_qsl(body.decode(), keep_blank_values=True)
    renamed = [(re.sub(r"^items\[(\d+)\]\[price\]$", r"items[\1][plan]", k), v) for k, v in pairs]
    renamed = [("plan" if k == "price" else k, v) for k, v in renamed]
    return urlencode(renamed).encode()


def _with_prices(document: Any, prices: dict[str, dict[str, Any]]) -> Any:
    """Every object localstripe answers with a `plan` also carries that plan as its `price`."""
    if isinstance(document, list):
        return [_with_prices(item, prices) for item in document]
    if not isinstance(document, dict):
        return document
    result = {key: _with_prices(value, prices) for key, value in document.items()}
    plan = result.get("plan")
    if isinstance(plan, dict) and plan.get("object") == "plan" and "price" not in result:
        stored = prices.get(plan["id"])
        result["price"] = _price_view(stored, {}) if stored else _price_from_plan(plan)
    return result


def _with_extra_items(document: Any, extra: dict[str, list[dict[str, Any]]]) -> Any:
    """Every subscription this server knows more items of carries them after localstripe's one."""
    if isinstance(document, list):
        return [_with_extra_items(item, extra) for item in document]
    if not isinstance(document, dict):
        return document
    result = {key: _with_extra_items(value, extra) for key, value in document.items()}
    items = result.get("items")
    if result.get("object") == "subscription" and result.get("id") in extra and isinstance(items, dict):
        data = [*items.get("data", []), *extra[result["id"]]]
        result["items"] = {**items, "data": data, "total_count": len(data)}
    return result


def _public(session: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.startswith("_")}


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """The inverse of decode_form, for requests this server makes to localstripe."""
    if isinstance(data, dict):
        pairs: list[tuple[str, str]] = []
        for key, value in data.items():
            pairs += _flatten(value, f"{prefix}[{key}]" if prefix else str(key))
        return pairs
    if isinstance(data, list):
        pairs = []
        for index, value in enumerate(data):
            pairs += _flatten(value, f"{prefix}[{index}]")
        return pairs
    return [(prefix, "" if data is None else str(data))]


def _check_auth(request: web.Request, keys: set[str]) -> web.Response | None:
    header = request.headers.get("Authorization", "")
    if not header:
        message = (
            "You did not provide an API key. You need to provide your API key in the Authorization "
            "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
        )
    elif not header.startswith("Bearer ") or header.removeprefix("Bearer ") not in keys:
        shown = header.removeprefix("Bearer ")
        message = f"Invalid API Key provided: {shown[:8]}{'*' * max(len(shown) - 12, 0)}{shown[-4:]}"
    else:
        return None
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error"}},
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="Stripe"'},
    )


def start_fake_stripe(localstripe_url: str, secret_keys: set[str] | None = None) -> FakeStripe:
    port = free_port()
    fake = FakeStripe(
        url=f"http://127.0.0.1:{port}",
        localstripe_url=localstripe_url.rstrip("/"),
        secret_keys=secret_keys or {DEFAULT_SECRET_KEY},
    )
    handlers = _Handlers(fake)
    ready = threading.Event()

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        fake.loop = loop
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handlers.handle)

        async def start() -> None:
            handlers.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
            runner = web.AppRunner(app)
            fake.runner = runner
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()

        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True, name="fake-stripe").start()
    if not ready.wait(10):
        raise RuntimeError("the fake Stripe server did not start")
    fake.handlers = handlers
    return fake


def stop_fake_stripe(fake: FakeStripe) -> None:
    if fake.loop is None or fake.runner is None:
        return
    handlers: _Handlers = fake.handlers

    async def stop() -> None:
        assert fake.runner is not None
        await fake.runner.cleanup()
        if handlers.session is not None:
            await handlers.session.close()

    asyncio.run_coroutine_threadsafe(stop(), fake.loop).result(10)
    fake.loop.call_soon_threadsafe(fake.loop.stop)
