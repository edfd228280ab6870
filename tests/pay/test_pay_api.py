"""POST /pay, GET /pay/:id, GET /pay and refunds, charged for real through the SDK at localstripe."""

from __future__ import annotations

import json

import pytest

from apps.pay.models import Payment, PaymentSettings
from tests.pay.conftest import THREE_D_SECURE_CARD, card_payment_method, payment_intents_for

pytestmark = pytest.mark.django_db

SEED_BODY = {
    "amount": 5.00,
    "currency": "USD",
    "description": "API usage - 1000 tokens",
    "payment_method": "pm_card_visa",
}


def pay(client, body, **headers):
    # Sent as raw text so 5.00 reaches the server as the seed writes it (not a Python float).
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.post("/pay", raw, content_type="application/json", **headers)


def test_a_successful_payment_is_charged_and_stored(alice_client, alice, stripe_configured, stripe_client):
    response = pay(
        alice_client,
        '{"amount": 5.00, "currency": "USD", "description": "API usage - 1000 tokens", '
        '"payment_method": "pm_card_visa"}',
    )

    assert response.status_code == 200, response.content
    assert b'"amount":5.00' in response.content  # exact, as the seed shows it
    body = response.json()
    assert body["status"] == "success"
    assert body["transaction_id"].startswith("tx_")
    assert body["currency"] == "USD" and body["amount_minor"] == 500
    assert body["description"] == "API usage - 1000 tokens"
    assert body["charge_id"].startswith("ch_") and body["created_at"].endswith("Z")
    intents = payment_intents_for(stripe_client, body["transaction_id"])
    assert len(intents) == 1
    assert intents[0]["amount"] == 500 and intents[0]["currency"] == "usd"
    assert intents[0]["status"] == "succeeded"
    assert intents[0]["metadata"]["description"] == "API usage - 1000 tokens"
    stored = Payment.objects.for_tenant(alice).get(pk=body["transaction_id"])
    assert stored.status == "success" and stored.stripe_payment_intent_id == intents[0]["id"]

    # GET /pay/:id: the seed's second example
    fetched = alice_client.get(f"/pay/{body['transaction_id']}")
    assert fetched.status_code == 200
    assert fetched.json() | {"updated_at": None} == body | {"updated_at": None}


def test_zero_decimal_currency_is_charged_in_whole_units(alice_client, stripe_configured, stripe_client):
    response = pay(alice_client, {"amount": 500, "currency": "JPY", "payment_method": "pm_card_visa"})
    assert response.status_code == 200
    assert b'"amount":500,' in response.content
    intents = payment_intents_for(stripe_client, response.json()["transaction_id"])
    assert intents[0]["amount"] == 500 and intents[0]["currency"] == "jpy"


def test_three_decimal_currency(alice_client, stripe_configured, stripe_client):
    response = pay(alice_client, '{"amount": 12.340, "currency": "KWD", "payment_method": "pm_card_visa"}')
    assert response.status_code == 200
    assert b'"amount":12.340' in response.content
    assert payment_intents_for(stripe_client, response.json()["transaction_id"])[0]["amount"] == 12340


def test_a_declined_card_answers_402_failed(alice_client, alice, stripe_configured):
    response = pay(
        alice_client, {"amount": "7.50", "currency": "EUR", "payment_method": "pm_card_chargeCustomerFail"}
    )

    assert response.status_code == 402
    body = response.json()
    assert body["status"] == "failed"
    assert body["failure_code"] == "card_declined"
    assert body["failure_reason"] == "Your card was declined."
    assert body["code"] == "payment_failed"
    assert Payment.objects.for_tenant(alice).get(pk=body["transaction_id"]).status == "failed"


def test_three_d_secure_answers_requires_action(alice_client, stripe_configured, stripe_client):
    method = card_payment_method(stripe_client, THREE_D_SECURE_CARD)
    response = pay(alice_client, {"amount": "20.00", "currency": "USD", "payment_method": method})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "requires_action"
    assert body["next_action"]["type"] == "use_stripe_sdk"
    assert body["client_secret"].startswith(body["payment_intent_id"])


def test_an_unknown_payment_method_fails_with_stripes_reason(alice_client, stripe_configured):
    response = pay(alice_client, {"amount": 5, "currency": "USD", "payment_method": "card_token_123"})
    assert response.status_code == 402
    assert response.json()["status"] == "failed"
    assert "Stripe refused the payment" in response.json()["failure_reason"]


def test_refund(alice_client, alice, stripe_configured, stripe_client):
    tx = pay(alice_client, SEED_BODY).json()["transaction_id"]

    refunded = alice_client.post(f"/pay/{tx}/refund")
    again = alice_client.post(f"/pay/{tx}/refund")

    assert refunded.status_code == 200 and refunded.json()["status"] == "refunded"
    assert again.status_code == 200 and again.json()["status"] == "refunded"
    refunds = stripe_client.v1.refunds.list(params={"limit": 100}).to_dict()["data"]
    intent_id = Payment.objects.for_tenant(alice).get(pk=tx).stripe_payment_intent_id
    assert len([r for r in refunds if r.get("payment_intent") == intent_id]) == 1  # refunded once
    assert alice_client.get(f"/pay/{tx}").json()["status"] == "refunded"


def test_only_a_successful_payment_can_be_refunded(alice_client, stripe_configured):
    tx = pay(
        alice_client, {"amount": 5, "currency": "USD", "payment_method": "pm_card_chargeCustomerFail"}
    ).json()["transaction_id"]
    response = alice_client.post(f"/pay/{tx}/refund")
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert alice_client.post("/pay/tx_missing/refund").status_code == 404
    assert alice_client.post(f"/pay/{tx}/refund", "[1]", content_type="application/json").status_code == 400


def test_get_refreshes_a_non_final_payment_from_stripe(alice_client, alice, stripe_configured, stripe_client):
    method = card_payment_method(stripe_client, THREE_D_SECURE_CARD)
    body = pay(alice_client, {"amount": "20.00", "currency": "USD", "payment_method": method}).json()
    # The customer completes 3-D Secure in the browser (localstripe's Stripe.js endpoint).
    stripe_client.raw_request(
        "post",
        f"/v1/payment_intents/{body['payment_intent_id']}/_authenticate",
        client_secret=body["client_secret"],
        success="true",
    )

    refreshed = alice_client.get(f"/pay/{body['transaction_id']}")

    assert refreshed.json()["status"] == "success"
    assert refreshed.json()["next_action"] is None and "client_secret" not in refreshed.json()
    assert Payment.objects.for_tenant(alice).get(pk=body["transaction_id"]).status == "success"


def test_list_is_newest_first_with_cursor(alice_client, stripe_configured):
    ids = [pay(alice_client, {**SEED_BODY, "amount": n}).json()["transaction_id"] for n in (1, 2, 3)]

    first = alice_client.get("/pay?limit=2").json()
    second = alice_client.get(f"/pay?limit=2&cursor={first['next_cursor']}").json()

    assert [p["transaction_id"] for p in first["payments"]] == ids[::-1][:2]
    assert [p["transaction_id"] for p in second["payments"]] == ids[:1]
    assert second["next_cursor"] is None
    assert alice_client.get("/pay?status=failed").json()["payments"] == []
    assert len(alice_client.get("/pay?status=success").json()["payments"]) == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=x", "limit"), ("cursor=zz", "cursor"), ("status=paid", "status")],
)
def test_list_bad_input(alice_client, query, field):
    response = alice_client.get(f"/pay?{query}")
    assert response.status_code == 400
    assert field in response.json()["details"]


def test_charlie_never_sees_alices_payments(alice_client, charlie_client, stripe_configured):
    tx = pay(alice_client, SEED_BODY).json()["transaction_id"]

    assert charlie_client.get(f"/pay/{tx}").status_code == 404
    assert charlie_client.get(f"/pay/{tx}").json()["code"] == "not_found"
    assert charlie_client.post(f"/pay/{tx}/refund").status_code == 404
    assert charlie_client.get("/pay").json()["payments"] == []
    assert alice_client.get(f"/pay/{tx}").json()["status"] == "success"  # untouched


def test_scopes(client_for, alice, stripe_configured):
    reader = client_for(alice, "pay.read")
    payer = client_for(alice, "pay.execute")
    nobody = client_for(alice, "memory.*")

    denied = pay(reader, SEED_BODY)
    assert denied.status_code == 403 and denied.json()["required_scope"] == "pay.execute"
    tx = pay(payer, SEED_BODY).json()["transaction_id"]
    assert payer.get(f"/pay/{tx}").status_code == 403
    assert payer.get("/pay").json()["required_scope"] == "pay.read"
    assert reader.get(f"/pay/{tx}").status_code == 200
    assert reader.post(f"/pay/{tx}/refund").status_code == 403
    assert nobody.get("/pay").status_code == 403
    assert Payment.objects.for_tenant(alice).count() == 1  # the denied request stored nothing


def test_unauthenticated(client):
    assert client.post("/pay", SEED_BODY, content_type="application/json").status_code == 401
    assert client.get("/pay").status_code == 401


BAD_BODIES = [
    ({"amount": -5, "currency": "USD", "payment_method": "pm_card_visa"}, "amount"),
    ({"amount": 0, "currency": "USD", "payment_method": "pm_card_visa"}, "amount"),
    ('{"amount": 5.001, "currency": "USD", "payment_method": "pm_card_visa"}', "amount"),
    ('{"amount": 5.5, "currency": "JPY", "payment_method": "pm_card_visa"}', "amount"),
    ({"amount": "5.00", "currency": "XYZ", "payment_method": "pm_card_visa"}, "currency"),
    ({"amount": "5.00", "payment_method": "pm_card_visa"}, "currency"),
    ({"amount": "5.00", "currency": "USD"}, "payment_method"),
    ({"amount": "5.00", "currency": "USD", "payment_method": "pm card; drop"}, "payment_method"),
    ({"amount": "1000000000", "currency": "USD", "payment_method": "pm_card_visa"}, "amount"),
    ({"amount": "1e400", "currency": "USD", "payment_method": "pm_card_visa"}, "amount"),
    ({"amount": True, "currency": "USD", "payment_method": "pm_card_visa"}, "amount"),
    ({"currency": "USD", "payment_method": "pm_card_visa"}, "amount"),
    ({"amount": "5", "currency": "USD", "payment_method": "pm_card_visa", "description": 5}, "description"),
    (
        {"amount": "5", "currency": "USD", "payment_method": "pm_card_visa", "description": "x" * 501},
        "description",
    ),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_input_is_refused_and_stores_nothing(alice_client, alice, stripe_configured, body, field):
    response = pay(alice_client, body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["details"]
    assert Payment.objects.for_tenant(alice).count() == 0


@pytest.mark.parametrize("raw", ["[1, 2]", "not json", '{"amount": NaN, "currency": "USD"}', '"x"'])
def test_malformed_bodies(alice_client, alice, stripe_configured, raw):
    response = pay(alice_client, raw)
    assert response.status_code == 400
    assert Payment.objects.for_tenant(alice).count() == 0


def test_bad_idempotency_key(alice_client, stripe_configured):
    response = pay(alice_client, SEED_BODY, HTTP_IDEMPOTENCY_KEY="x" * 300)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["details"]


def test_the_tenants_maximum_and_currencies(alice_client, alice, stripe_configured):
    PaymentSettings.objects.create(
        tenant=alice, max_amounts={"USD": "50.00"}, allowed_currencies=["USD", "JPY"]
    )

    too_much = pay(alice_client, {**SEED_BODY, "amount": "50.01"})
    just_right = pay(alice_client, {**SEED_BODY, "amount": "50.00"})
    wrong_currency = pay(alice_client, {**SEED_BODY, "currency": "EUR"})

    assert too_much.status_code == 400 and "maximum of 50.00 USD" in too_much.json()["error"]
    assert just_right.status_code == 200
    assert wrong_currency.status_code == 400 and "currency" in wrong_currency.json()["details"]


def test_without_a_stripe_key_pay_says_what_to_set(alice_client, alice, settings):
    settings.STRIPE_SECRET_KEY = None
    response = pay(alice_client, SEED_BODY)
    assert response.status_code == 503
    assert response.json()["code"] == "payments_not_configured"
    assert "STRIPE_SECRET_KEY" in response.json()["error"] and "STRIPE_API_BASE" in response.json()["error"]
    assert Payment.objects.for_tenant(alice).count() == 0
    assert alice_client.get("/pay").status_code == 200  # reading stored payments needs no Stripe


def test_info_lists_pay_endpoints(client, alice_client, stripe_configured):
    paths = {e["path"]: e["methods"] for e in client.get("/info").json()["endpoints"]}
    assert paths["/pay"] == ["GET", "POST"]
    assert paths["/pay/:payment_id"] == ["GET"]
    assert paths["/pay/:payment_id/refund"] == ["POST"]
    assert alice_client.get("/info").json()["payments"] == {"configured": True}


@pytest.mark.parametrize("payment_id", ["tx_" + "9" * 300, "nonsense", "tx_%C3%A9", "%20"])
def test_get_and_refund_unknown_or_malformed_ids_are_404(alice_client, stripe_configured, payment_id):
    assert alice_client.get(f"/pay/{payment_id}").status_code == 404
    assert alice_client.post(f"/pay/{payment_id}/refund").status_code == 404


# stripe_configured before settings: fixtures end in reverse order, and pytest-django's `settings`
# put back what it saw when it changed a value, the key stripe_configured had set, for every later test.
def test_refund_without_a_stripe_key_says_what_to_set(alice_client, stripe_configured, settings):
    tx = pay(alice_client, SEED_BODY).json()["transaction_id"]
    settings.STRIPE_SECRET_KEY = None
    response = alice_client.post(f"/pay/{tx}/refund")
    assert response.status_code == 503 and response.json()["code"] == "payments_not_configured"
    assert alice_client.get(f"/pay/{tx}").json()["status"] == "success"
