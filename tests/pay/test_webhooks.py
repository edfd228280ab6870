"""POST /pay/webhook: Stripe's signature checked by the SDK, each event applied once, in any order."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client, override_settings

from apps.core.crypto import encrypt_text
from apps.core.ids import new_id
from apps.pay.models import Payment, PaymentSettings, StripeEvent
from tests.pay.conftest import TEST_WEBHOOK_SECRET

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


@pytest.fixture
def webhook_secret():
    with override_settings(STRIPE_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET, STRIPE_SECRET_KEY="sk_test_x"):
        yield


def signed(payload: bytes, secret: str = TEST_WEBHOOK_SECRET, at: int | None = None) -> str:
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def make_payment(tenant, *, intent_id: str = "", status: str = "pending", own_key: bool = False) -> Payment:
    return Payment.objects.create(
        tenant=tenant,
        id=new_id("tx"),
        amount=Decimal("5.00"),
        amount_minor=500,
        currency="USD",
        payment_method="pm_card_visa",
        status=status,
        stripe_payment_intent_id=intent_id,
        stripe_answered=bool(intent_id),
        request_fingerprint="x",
        uses_tenant_key=own_key,
    )


def intent_event(event_type: str, payment: Payment, intent_status: str, created: int, **extra) -> dict:
    intent = {
        "id": payment.stripe_payment_intent_id or "pi_from_event",
        "object": "payment_intent",
        "status": intent_status,
        "amount": payment.amount_minor,
        "currency": "usd",
        "metadata": {"slop_transaction_id": payment.id, "slop_tenant": str(payment.tenant_id)},
        "latest_charge": "ch_123" if intent_status == "succeeded" else None,
        "last_payment_error": None,
        "next_action": None,
        **extra,
    }
    return {
        "id": f"evt_{event_type}_{created}_{payment.id}",
        "object": "event",
        "type": event_type,
        "created": created,
        "data": {"object": intent},
    }


def deliver(
    client,
    event: dict,
    *,
    path: str = "/pay/webhook",
    secret: str = TEST_WEBHOOK_SECRET,
    at: int | None = None,
):
    payload = json.dumps(event).encode()
    return client.post(
        path, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signed(payload, secret, at)
    )


def status_of(payment: Payment) -> str:
    return Payment.objects.for_tenant(payment.tenant).get(pk=payment.pk).status


def test_an_event_delivered_five_times_is_applied_once(client, alice):
    payment = make_payment(alice, intent_id="pi_five")
    event = intent_event("payment_intent.succeeded", payment, "succeeded", created=1000)

    outcomes = [deliver(client, event) for _ in range(5)]

    assert [r.status_code for r in outcomes] == [200] * 5
    assert outcomes[0].json()["outcome"] == "applied: success"
    assert {r.json()["outcome"] for r in outcomes[1:]} == {"duplicate"}
    assert StripeEvent.objects.filter(event_id=event["id"]).count() == 1
    assert status_of(payment) == "success"
    assert Payment.objects.for_tenant(alice).get(pk=payment.pk).stripe_charge_id == "ch_123"


def test_a_late_processing_event_never_overwrites_success(client, alice):
    payment = make_payment(alice, intent_id="pi_order")
    deliver(client, intent_event("payment_intent.succeeded", payment, "succeeded", created=2000))
    deliver(client, intent_event("payment_intent.processing", payment, "processing", created=1990))
    deliver(
        client,
        intent_event("payment_intent.payment_failed", payment, "requires_payment_method", created=1995),
    )
    assert status_of(payment) == "success"


def test_out_of_order_between_non_final_states_keeps_the_newest(client, alice):
    payment = make_payment(alice, intent_id="pi_nonfinal")
    failed = intent_event(
        "payment_intent.payment_failed",
        payment,
        "requires_payment_method",
        created=3000,
        last_payment_error={"code": "card_declined", "message": "Your card was declined."},
    )
    deliver(client, failed)
    deliver(client, intent_event("payment_intent.processing", payment, "processing", created=2990))

    stored = Payment.objects.for_tenant(alice).get(pk=payment.pk)
    assert stored.status == "failed" and stored.failure_reason == "Your card was declined."
    # A newer success (the customer retried with another card) still wins.
    deliver(client, intent_event("payment_intent.succeeded", payment, "succeeded", created=3010))
    assert status_of(payment) == "success"


def test_refund_then_late_success_stays_refunded(client, alice):
    payment = make_payment(alice, intent_id="pi_refund", status="success")
    charge = {
        "id": "ch_r",
        "object": "charge",
        "payment_intent": "pi_refund",
        "refunded": True,
        "amount_refunded": 500,
    }
    deliver(
        client, {"id": "evt_refund", "type": "charge.refunded", "created": 5000, "data": {"object": charge}}
    )
    deliver(client, intent_event("payment_intent.succeeded", payment, "succeeded", created=4000))
    assert status_of(payment) == "refunded"


def test_a_payment_whose_create_timed_out_is_found_by_metadata(client, alice, charlie):
    payment = make_payment(alice)  # no PaymentIntent id: Stripe never answered us
    event = intent_event("payment_intent.succeeded", payment, "succeeded", created=6000, id="pi_late")

    assert deliver(client, event).json()["outcome"] == "applied: success"
    stored = Payment.objects.for_tenant(alice).get(pk=payment.pk)
    assert stored.status == "success" and stored.stripe_payment_intent_id == "pi_late"

    # Metadata naming another tenant's transaction is not enough.
    other = make_payment(charlie)
    forged = intent_event("payment_intent.succeeded", other, "succeeded", created=6001, id="pi_forged")
    forged["data"]["object"]["metadata"]["slop_tenant"] = str(alice.pk)
    assert deliver(client, forged).json()["outcome"] == "ignored: no payment of ours"
    assert status_of(other) == "pending"


def test_unknown_event_types_are_acknowledged_and_ignored(client, alice):
    payment = make_payment(alice, intent_id="pi_unknown")
    event = {
        "id": "evt_customer",
        "type": "customer.created",
        "created": 7000,
        "data": {"object": {"id": "cus_1"}},
    }
    response = deliver(client, event)
    assert response.status_code == 200 and response.json()["outcome"].startswith("ignored")
    assert StripeEvent.objects.get(event_id="evt_customer").processed_at is not None
    assert status_of(payment) == "pending"


def test_events_for_intents_we_do_not_know_are_ignored(client):
    event = {
        "id": "evt_foreign",
        "type": "payment_intent.succeeded",
        "created": 1,
        "data": {"object": {"id": "pi_foreign", "status": "succeeded"}},
    }
    assert deliver(client, event).json()["outcome"] == "ignored: no payment of ours"


@pytest.mark.parametrize(
    ("secret", "age"),
    [("whsec_wrong", 0), (TEST_WEBHOOK_SECRET, 3600)],
    ids=["bad-signature", "old-signature"],
)
def test_a_bad_or_old_signature_is_400_with_no_side_effect(client, alice, secret, age):
    payment = make_payment(alice, intent_id="pi_sig")
    event = intent_event("payment_intent.succeeded", payment, "succeeded", created=8000)

    response = deliver(client, event, secret=secret, at=int(time.time()) - age)

    assert response.status_code == 400 and response.json()["code"] == "invalid_signature"
    assert not StripeEvent.objects.filter(event_id=event["id"]).exists()
    assert status_of(payment) == "pending"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"{}", {}),
        (b"not json", {"HTTP_STRIPE_SIGNATURE": signed(b"not json")}),
        (b'{"object": "event"}', {"HTTP_STRIPE_SIGNATURE": signed(b'{"object": "event"}')}),
        (b"{}", {"HTTP_STRIPE_SIGNATURE": "garbage"}),
    ],
    ids=["no-signature", "not-json", "no-id", "garbled-signature"],
)
def test_webhook_bad_input(client, body, headers):
    response = client.post("/pay/webhook", body, content_type="application/json", **headers)
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_webhook_without_a_secret_is_503(client):
    with override_settings(STRIPE_WEBHOOK_SECRET=None):
        response = client.post(
            "/pay/webhook", b"{}", content_type="application/json", HTTP_STRIPE_SIGNATURE="t=1,v1=x"
        )
    assert response.status_code == 503 and response.json()["code"] == "payments_not_configured"


def test_a_tenants_own_webhook_endpoint_uses_its_own_secret(client, alice, charlie):
    PaymentSettings.objects.create(tenant=alice, stripe_webhook_secret_encrypted=encrypt_text("whsec_alice"))
    mine = make_payment(alice, intent_id="pi_alice_own", own_key=True)
    theirs = make_payment(charlie, intent_id="pi_charlie", own_key=True)
    path = f"/pay/webhook/{alice.slug}"

    assert (
        deliver(
            client, intent_event("payment_intent.succeeded", mine, "succeeded", 9000), path=path
        ).status_code
        == 400
    )
    ok = deliver(
        client,
        intent_event("payment_intent.succeeded", mine, "succeeded", 9000),
        path=path,
        secret="whsec_alice",
    )
    assert ok.status_code == 200 and status_of(mine) == "success"
    # Alice's endpoint cannot touch Charlie's payments.
    other = deliver(
        client,
        intent_event("payment_intent.succeeded", theirs, "succeeded", 9001),
        path=path,
        secret="whsec_alice",
    )
    assert other.json()["outcome"] == "ignored: no payment of ours" and status_of(theirs) == "pending"
    assert deliver(client, {"id": "evt_x", "type": "x"}, path="/pay/webhook/nobody").status_code == 404
    # Charlie has no webhook secret of his own: his endpoint answers like an unknown one.
    assert (
        deliver(client, {"id": "evt_y", "type": "x"}, path=f"/pay/webhook/{charlie.slug}").status_code == 404
    )


@pytest.mark.django_db(transaction=True)
def test_five_simultaneous_deliveries_apply_once(alice):
    payment = make_payment(alice, intent_id="pi_race")
    refund = {"id": "ch_race", "object": "charge", "payment_intent": "pi_race", "refunded": True}
    Payment.objects.for_tenant(alice).filter(pk=payment.pk).update(status="success")
    event = {"id": "evt_race", "type": "charge.refunded", "created": 100, "data": {"object": refund}}
    barrier = threading.Barrier(5)
    outcomes: list[str] = []

    def send() -> None:
        try:
            barrier.wait()
            outcomes.append(deliver(Client(), event).json()["outcome"])
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["applied: refunded"] + ["duplicate"] * 4
    assert StripeEvent.objects.filter(event_id="evt_race").count() == 1
    assert status_of(payment) == "refunded"


# --- issue 12: the account's own payments and event ids; signatures from the future ------------


@pytest.fixture
def alice_endpoint(alice):
    PaymentSettings.objects.create(tenant=alice, stripe_webhook_secret_encrypted=encrypt_text("whsec_alice"))
    return f"/pay/webhook/{alice.slug}"


def test_a_tenants_endpoint_cannot_pre_empt_the_platforms_events(client, alice, alice_endpoint):
    """Alice signs her own endpoint's events, so she can send any event id: it must not be the
    platform's (or another tenant's) record of that id."""
    payment = make_payment(alice, intent_id="pi_platform")  # charged with the platform's key
    event = intent_event("payment_intent.succeeded", payment, "succeeded", created=9100)

    first = deliver(client, event, path=alice_endpoint, secret="whsec_alice")
    assert first.status_code == 200 and first.json()["outcome"] == "ignored: no payment of ours"
    # The platform's genuine delivery of that id is still applied, not answered "duplicate".
    genuine = deliver(client, event)
    assert genuine.json()["outcome"] == "applied: success" and status_of(payment) == "success"
    assert StripeEvent.objects.filter(event_id=event["id"]).count() == 2
    # Each account still applies its own event once.
    assert deliver(client, event).json()["outcome"] == "duplicate"
    assert deliver(client, event, path=alice_endpoint, secret="whsec_alice").json()["outcome"] == "duplicate"


def test_a_tenants_endpoint_reaches_only_payments_of_its_own_account(client, alice, alice_endpoint):
    platform = make_payment(alice, intent_id="pi_by_platform")
    forged = intent_event("payment_intent.succeeded", platform, "succeeded", created=9200)
    response = deliver(client, forged, path=alice_endpoint, secret="whsec_alice")
    assert response.json()["outcome"] == "ignored: no payment of ours"
    assert status_of(platform) == "pending"
    own = make_payment(alice, intent_id="pi_by_alice", own_key=True)
    theirs = intent_event("payment_intent.succeeded", own, "succeeded", created=9201)
    assert deliver(client, theirs).json()["outcome"] == "ignored: no payment of ours"  # platform's door
    assert status_of(own) == "pending"


@pytest.mark.parametrize("path", ["/pay/webhook", "tenant"])
def test_a_signature_from_an_hour_ahead_is_400_with_no_side_effect(client, alice, alice_endpoint, path):
    own_key = path == "tenant"
    payment = make_payment(alice, intent_id="pi_future", own_key=own_key)
    event = intent_event("payment_intent.succeeded", payment, "succeeded", created=9300)
    secret = "whsec_alice" if own_key else TEST_WEBHOOK_SECRET

    response = deliver(
        client, event, path=alice_endpoint if own_key else path, secret=secret, at=int(time.time()) + 3600
    )

    assert response.status_code == 400 and response.json()["code"] == "invalid_signature"
    assert not StripeEvent.objects.filter(event_id=event["id"]).exists()
    assert status_of(payment) == "pending"
    # Within the tolerance a clock slightly ahead is fine.
    ahead = deliver(
        client, event, path=alice_endpoint if own_key else path, secret=secret, at=int(time.time()) + 60
    )
    assert ahead.status_code == 200 and status_of(payment) == "success"
