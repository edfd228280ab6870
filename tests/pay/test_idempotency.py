"""Idempotency-Key: the same key and body answer the first result and charge once."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection

from apps.pay.models import Payment
from tests.pay.conftest import payment_intents_for

BODY = {"amount": "12.00", "currency": "USD", "description": "idempotent", "payment_method": "pm_card_visa"}


def pay(client, body, key):
    return client.post("/pay", json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_same_key_same_body_replays_the_first_answer(alice_client, alice, stripe_configured, stripe_client):
    first = pay(alice_client, BODY, "order-1")
    # 12, 12.0 and "12.00" are the same money: the same request.
    second = pay(alice_client, {**BODY, "amount": 12}, "order-1")

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Payment.objects.for_tenant(alice).count() == 1
    assert len(payment_intents_for(stripe_client, first.json()["transaction_id"])) == 1


@pytest.mark.django_db
def test_a_replayed_decline_is_still_402(alice_client, stripe_configured):
    body = {**BODY, "payment_method": "pm_card_chargeCustomerFail"}
    first = pay(alice_client, body, "order-declined")
    second = pay(alice_client, body, "order-declined")
    assert first.status_code == second.status_code == 402
    assert second.json()["transaction_id"] == first.json()["transaction_id"]


@pytest.mark.django_db
def test_same_key_different_body_is_a_conflict(alice_client, alice, stripe_configured):
    first = pay(alice_client, BODY, "order-2")
    other = pay(alice_client, {**BODY, "amount": "13.00"}, "order-2")

    assert other.status_code == 409
    assert other.json()["code"] == "conflict"
    assert other.json()["transaction_id"] == first.json()["transaction_id"]
    assert Payment.objects.for_tenant(alice).count() == 1


@pytest.mark.django_db
def test_keys_belong_to_one_tenant(alice_client, charlie_client, stripe_configured):
    alices = pay(alice_client, BODY, "shared-key")
    charlies = pay(charlie_client, BODY, "shared-key")
    assert charlies.status_code == 200
    assert charlies.json()["transaction_id"] != alices.json()["transaction_id"]
    assert "Idempotent-Replayed" not in charlies


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_identical_requests_make_one_charge(
    client_for, alice, stripe_configured, stripe_client
):
    clients = [client_for(alice) for _ in range(10)]
    barrier = threading.Barrier(10)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def send(client):
        try:
            barrier.wait()
            response = pay(client, BODY, "concurrent-order")
            with lock:
                results.append((response.status_code, response.json()))
        finally:
            connection.close()  # each thread has its own database connection

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 10
    assert {status for status, _ in results} == {200}
    transaction_ids = {body["transaction_id"] for _, body in results}
    assert len(transaction_ids) == 1
    assert {body["status"] for _, body in results} == {"success"}
    assert Payment.objects.for_tenant(alice).count() == 1
    assert len(payment_intents_for(stripe_client, transaction_ids.pop())) == 1
