"""The real server (Daphne) charging through localstripe, and localstripe's own webhooks reaching it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import stripe

from apps.pay.models import Payment, StripeEvent
from tests.conftest import free_port, wait_for_port
from tests.e2e.conftest import LiveServer, start_server, stop_server
from tests.pay.conftest import (
    _RUNNER,
    TEST_SECRET_KEY,
    TEST_WEBHOOK_SECRET,
    THREE_D_SECURE_CARD,
    card_payment_method,
    payment_intents_for,
    register_webhook,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def own_localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A localstripe for this module alone, so its webhooks reach only this module's server."""
    port = free_port()
    log = (tmp_path_factory.mktemp("localstripe-e2e") / "localstripe.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def pay_server(
    django_db_setup: None,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
    own_localstripe: str,
) -> Iterator[LiveServer]:
    env = {
        "STRIPE_SECRET_KEY": TEST_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "STRIPE_API_BASE": own_localstripe,
        "STRIPE_LOCALSTRIPE_COMPAT": "true",
        "STRIPE_MAX_NETWORK_RETRIES": "0",
    }
    with django_db_blocker.unblock():
        server = start_server(env, tmp_path_factory.mktemp("pay-server"))
    register_webhook(own_localstripe, "slop", f"{server.url}/pay/webhook", TEST_WEBHOOK_SECRET)
    yield server
    stop_server(server)


@pytest.fixture
def own_stripe(own_localstripe: str) -> stripe.StripeClient:
    return stripe.StripeClient(TEST_SECRET_KEY, base_addresses={"api": own_localstripe})


@pytest.fixture
def http(pay_server: LiveServer, make_key: Callable[..., str], alice: Any) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=pay_server.url, headers={"Authorization": f"Bearer {make_key(alice)}"}, timeout=30
    ) as client:
        yield client


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_the_seed_examples_against_localstripe(http, alice, own_stripe):
    # POST /pay, the seed's body with a payment method Stripe knows in test mode.
    created = http.post(
        "/pay",
        content=b'{"amount": 5.00, "currency": "USD", "description": "API usage - 1000 tokens", '
        b'"payment_method": "pm_card_visa"}',
        headers={"Content-Type": "application/json"},
    )
    assert created.status_code == 200, created.text
    assert b'"amount":5.00' in created.content
    body = created.json()
    assert body["status"] == "success" and body["transaction_id"].startswith("tx_")
    assert body["charge_id"].startswith("ch_")
    charge = own_stripe.v1.charges.retrieve(body["charge_id"]).to_dict()
    assert charge["amount"] == 500 and charge["status"] == "succeeded"

    # GET /pay/:id
    fetched = http.get(f"/pay/{body['transaction_id']}")
    assert fetched.status_code == 200
    assert {
        k: fetched.json()[k] for k in ("transaction_id", "amount", "currency", "description", "status")
    } == {
        "transaction_id": body["transaction_id"],
        "amount": 5.0,
        "currency": "USD",
        "description": "API usage - 1000 tokens",
        "status": "success",
    }
    assert "created_at" in fetched.json() and "receipt_url" in fetched.json()

    # localstripe then delivers payment_intent.succeeded to the running server, signed.
    assert wait_until(lambda: StripeEvent.objects.filter(payment_id=body["transaction_id"]).exists())
    event = StripeEvent.objects.get(payment_id=body["transaction_id"])
    assert event.type == "payment_intent.succeeded" and event.outcome == "kept: success"


def test_three_d_secure_completed_by_the_customer_arrives_by_webhook(http, alice, own_stripe):
    method = card_payment_method(own_stripe, THREE_D_SECURE_CARD)
    body = http.post("/pay", json={"amount": "42.00", "currency": "EUR", "payment_method": method}).json()
    assert body["status"] == "requires_action" and body["next_action"]

    own_stripe.raw_request(
        "post",
        f"/v1/payment_intents/{body['payment_intent_id']}/_authenticate",
        client_secret=body["client_secret"],
        success="true",
    )

    # No GET: the webhook alone moves the stored payment to success.
    assert wait_until(
        lambda: Payment.objects.for_tenant(alice).get(pk=body["transaction_id"]).status == "success"
    ), "the webhook never arrived"
    event = StripeEvent.objects.get(payment_id=body["transaction_id"])
    assert event.outcome == "applied: success"


def test_a_decline_and_its_webhook(http, alice):
    response = http.post(
        "/pay", json={"amount": "3.00", "currency": "USD", "payment_method": "pm_card_chargeCustomerFail"}
    )
    assert response.status_code == 402 and response.json()["status"] == "failed"
    tx = response.json()["transaction_id"]
    assert wait_until(
        lambda: StripeEvent.objects.filter(payment_id=tx, type="payment_intent.payment_failed").exists()
    )
    assert Payment.objects.for_tenant(alice).get(pk=tx).status == "failed"


def test_unknown_event_types_from_localstripe_are_acknowledged(pay_server, own_stripe):
    customer = own_stripe.v1.customers.create(params={"email": "c@example.com"})
    assert wait_until(lambda: StripeEvent.objects.filter(type="customer.created").exists())
    event = StripeEvent.objects.get(type="customer.created")
    assert event.outcome.startswith("ignored") and event.processed_at is not None
    assert customer.id


def test_ten_concurrent_requests_through_the_server_make_one_charge(http, alice, own_stripe):
    body = {"amount": "15.00", "currency": "USD", "payment_method": "pm_card_visa"}

    def send(_: int) -> httpx.Response:
        return http.post("/pay", json=body, headers={"Idempotency-Key": "e2e-concurrent"})

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(send, range(10)))

    assert {r.status_code for r in responses} == {200}
    ids = {r.json()["transaction_id"] for r in responses}
    assert len(ids) == 1
    assert len(payment_intents_for(own_stripe, ids.pop())) == 1
    assert Payment.objects.for_tenant(alice).count() == 1


def test_refund_over_http_and_cross_tenant(http, pay_server, make_key, charlie):
    tx = http.post(
        "/pay", json={"amount": "8.00", "currency": "USD", "payment_method": "pm_card_visa"}
    ).json()["transaction_id"]
    charlie_headers = {"Authorization": f"Bearer {make_key(charlie)}"}
    assert httpx.get(f"{pay_server.url}/pay/{tx}", headers=charlie_headers).status_code == 404
    assert httpx.post(f"{pay_server.url}/pay/{tx}/refund", headers=charlie_headers).status_code == 404
    assert httpx.get(f"{pay_server.url}/pay", headers=charlie_headers).json()["payments"] == []

    refunded = http.post(f"/pay/{tx}/refund")
    assert refunded.status_code == 200 and refunded.json()["status"] == "refunded"
    assert [p["status"] for p in http.get("/pay").json()["payments"]] == ["refunded"]
