"""Stripe down or slow: 502/504, the payment kept `pending`, then reconciled — never lost or doubled."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from apps.pay.models import Payment
from apps.pay.tasks import reconcile_pending_payments
from tests.conftest import free_port
from tests.pay.conftest import payment_intents_for

pytestmark = pytest.mark.django_db

BODY = {"amount": "9.99", "currency": "USD", "description": "outage", "payment_method": "pm_card_visa"}


def pay(client, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/pay", json.dumps(BODY), content_type="application/json", **headers)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a Stripe that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    listener.close()


def test_stripe_down_is_502_and_the_payment_stays_pending(
    alice_client, alice, stripe_configured, stripe_client
):
    with override_settings(STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}"):
        response = pay(alice_client, key="outage-1")

    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "stripe_unavailable"
    assert body["payment"]["status"] == "pending"
    stored = Payment.objects.for_tenant(alice).get(pk=body["transaction_id"])
    assert stored.status == "pending" and stored.idempotency_key == "outage-1"
    assert alice_client.get(f"/pay/{stored.pk}").json()["status"] == "pending"

    # Stripe is back: the client retries with the same key and gets the one charge.
    retried = pay(alice_client, key="outage-1")
    assert retried.status_code == 200 and retried.json()["status"] == "success"
    assert retried.json()["transaction_id"] == stored.pk
    assert len(payment_intents_for(stripe_client, stored.pk)) == 1


def test_stripe_slow_is_504(alice_client, alice, stripe_configured, silent_server):
    with override_settings(STRIPE_API_BASE=silent_server, STRIPE_TIMEOUT_SECONDS=0.5):
        response = pay(alice_client)

    assert response.status_code == 504
    assert response.json()["code"] == "stripe_timeout"
    assert Payment.objects.for_tenant(alice).get().status == "pending"


def test_reconcile_settles_pending_payments(alice_client, alice, stripe_configured, stripe_client):
    with override_settings(STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}"):
        tx = pay(alice_client).json()["transaction_id"]
        out = StringIO()
        call_command("pay_reconcile", "--older-than", "0", stdout=out)
        assert f"{tx} ({alice.slug}): unreachable" in out.getvalue()
    assert Payment.objects.for_tenant(alice).get(pk=tx).status == "pending"

    out = StringIO()
    call_command("pay_reconcile", "--older-than", "0", stdout=out)

    assert "charged: success" in out.getvalue()
    assert Payment.objects.for_tenant(alice).get(pk=tx).status == "success"
    assert len(payment_intents_for(stripe_client, tx)) == 1


def test_reconcile_task_refreshes_and_expires(alice_client, alice, stripe_configured):
    with override_settings(STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}"):
        tx = pay(alice_client).json()["transaction_id"]
    # Older than Stripe's idempotency window: never re-sent, marked failed with the reason.
    Payment.objects.for_tenant(alice).filter(pk=tx).update(created_at=timezone.now() - timedelta(days=2))

    with override_settings(SLOP_PAY_RECONCILE_AFTER_SECONDS=0):
        results = reconcile_pending_payments()

    assert results[tx] == "expired"
    stored = Payment.objects.for_tenant(alice).get(pk=tx)
    assert stored.status == "failed" and stored.failure_code == "stripe_unreachable"


def test_refund_while_stripe_is_down_changes_nothing(alice_client, alice, stripe_configured):
    tx = pay(alice_client).json()["transaction_id"]
    with override_settings(STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}"):
        response = alice_client.post(f"/pay/{tx}/refund")
    assert response.status_code == 502
    assert Payment.objects.for_tenant(alice).get(pk=tx).status == "success"
