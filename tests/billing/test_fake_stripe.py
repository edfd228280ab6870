"""The fake Stripe server answers the official SDK as Stripe does (and proxies the rest to
localstripe), so billing tests exercise the real client code over a socket."""

from __future__ import annotations

import time

import httpx
import pytest
import stripe

from tests.billing.fake_stripe import FakeStripe, decode_form


def test_form_decoding_follows_stripes_bracket_nesting() -> None:
    body = "a=1&payload[value]=5&line_items[0][price]=p1&line_items[1][price]=p2&expand[]=x&expand[]=y"
    assert decode_form(body) == {
        "a": "1",
        "payload": {"value": "5"},
        "line_items": [{"price": "p1"}, {"price": "p2"}],
        "expand": ["x", "y"],
    }


def _meter(client: stripe.StripeClient, event_name: str = "slop_tokens") -> stripe.billing.Meter:
    return client.v1.billing.meters.create(
        params={
            "display_name": "Tokens",
            "event_name": event_name,
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    )


def test_meter_events_count_once_per_identifier_and_show_in_summaries(
    fake_stripe: FakeStripe, billing_stripe_client: stripe.StripeClient
) -> None:
    client = billing_stripe_client
    meter = _meter(client)
    assert meter.status == "active" and meter.id.startswith("mtr_")
    assert [m.id for m in client.v1.billing.meters.list()] == [meter.id]
    assert client.v1.billing.meters.retrieve(meter.id).event_name == "slop_tokens"
    customer = client.v1.customers.create(params={"email": "a@example.com"})  # proxied to localstripe
    assert customer.id.startswith("cus_")

    event = client.v1.billing.meter_events.create(
        params={
            "event_name": "slop_tokens",
            "identifier": "batch-1",
            "payload": {"stripe_customer_id": customer.id, "value": "120"},
        }
    )
    assert event.identifier == "batch-1" and event.payload["value"] == "120"
    with pytest.raises(stripe.InvalidRequestError) as duplicate:
        client.v1.billing.meter_events.create(
            params={
                "event_name": "slop_tokens",
                "identifier": "batch-1",
                "payload": {"stripe_customer_id": customer.id, "value": "120"},
            }
        )
    assert duplicate.value.code == "resource_already_exists"
    client.v1.billing.meter_events.create(
        params={"event_name": "slop_tokens", "payload": {"stripe_customer_id": customer.id, "value": "5"}}
    )
    assert fake_stripe.total("slop_tokens", customer.id) == 125

    start = int(time.time()) // 86400 * 86400
    summaries = client.v1.billing.meters.event_summaries.list(
        meter.id, params={"customer": customer.id, "start_time": start, "end_time": start + 86400}
    )
    assert [s.aggregated_value for s in summaries.data] == [125]
    with pytest.raises(stripe.InvalidRequestError, match="minute boundaries"):
        client.v1.billing.meters.event_summaries.list(
            meter.id, params={"customer": customer.id, "start_time": start + 1, "end_time": start + 86400}
        )


def test_bad_meter_events_get_stripes_errors(
    fake_stripe: FakeStripe, billing_stripe_client: stripe.StripeClient
) -> None:
    client = billing_stripe_client
    _meter(client)
    with pytest.raises(stripe.InvalidRequestError, match="No active meter"):
        client.v1.billing.meter_events.create(
            params={"event_name": "nope", "payload": {"stripe_customer_id": "cus_1", "value": "1"}}
        )
    with pytest.raises(stripe.InvalidRequestError, match="whole number"):
        client.v1.billing.meter_events.create(
            params={"event_name": "slop_tokens", "payload": {"stripe_customer_id": "cus_1", "value": "1.5"}}
        )
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.billing.meter_events.create(params={"event_name": "slop_tokens", "payload": {"value": "1"}})
    assert missing.value.param == "payload[stripe_customer_id]"
    fake_stripe.outage = 503
    with pytest.raises(stripe.APIError):
        client.v1.billing.meter_events.create(
            params={"event_name": "slop_tokens", "payload": {"stripe_customer_id": "cus_1", "value": "1"}}
        )
    assert fake_stripe.meter_events == []


def test_wrong_key_is_refused(fake_stripe: FakeStripe) -> None:
    client = stripe.StripeClient("sk_test_wrong", base_addresses={"api": fake_stripe.url})
    with pytest.raises(stripe.AuthenticationError):
        client.v1.billing.meters.list()


def test_checkout_session_for_a_subscription_and_its_completion(
    fake_stripe: FakeStripe, billing_stripe_client: stripe.StripeClient
) -> None:
    client = billing_stripe_client
    product = client.v1.products.create(params={"name": "Pro"})
    price = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 2000,
            "recurring": {"interval": "month"},
        }
    )
    customer = client.v1.customers.create(params={"email": "team@example.com"})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://example.com/ok",
            "cancel_url": "https://example.com/cancel",
            "client_reference_id": "tenant-1",
            "metadata": {"plan": "pro"},
        }
    )
    assert session.url.startswith("https://checkout.stripe.com/") and session.status == "open"
    assert client.v1.checkout.sessions.retrieve(session.id).metadata["plan"] == "pro"
    with pytest.raises(stripe.InvalidRequestError, match="No such price"):
        client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "line_items": [{"price": "price_nope"}],
                "success_url": "https://x",
            }
        )

    response = httpx.post(f"{fake_stripe.url}/_fake/checkout/sessions/{session.id}/complete")
    completed = response.json()
    assert response.status_code == 200, completed
    assert completed["status"] == "complete"
    subscription = client.v1.subscriptions.retrieve(completed["subscription"])
    assert subscription.customer == customer.id and subscription.status == "active"
    assert subscription["items"].data[0].price.id == price.id


def test_portal_session_needs_an_existing_customer(
    fake_stripe: FakeStripe, billing_stripe_client: stripe.StripeClient
) -> None:
    client = billing_stripe_client
    customer = client.v1.customers.create(params={"email": "team@example.com"})
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": "https://example.com/billing"}
    )
    assert portal.url.startswith("https://billing.stripe.com/") and portal.customer == customer.id
    with pytest.raises(stripe.InvalidRequestError, match="No such customer"):
        client.v1.billing_portal.sessions.create(params={"customer": "cus_missing"})
