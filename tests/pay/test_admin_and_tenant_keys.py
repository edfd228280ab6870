"""The operators' admin (money read-only, secrets encrypted) and a tenant's own Stripe key."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from apps.core.crypto import decrypt_text_or_none, encrypt_text
from apps.pay.models import Payment, PaymentSettings

pytestmark = pytest.mark.django_db

BODY = {"amount": "5.00", "currency": "USD", "payment_method": "pm_card_visa"}


@pytest.fixture
def operator_client(client):
    user = get_user_model().objects.create_superuser("operator", "op@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


def test_admin_lists_payments_per_tenant_with_money_read_only(
    operator_client, alice_client, alice, stripe_configured
):
    tx = alice_client.post("/pay", json.dumps(BODY), content_type="application/json").json()["transaction_id"]

    listing = operator_client.get("/admin/pay/payment/")
    detail = operator_client.get(f"/admin/pay/payment/{tx}/change/")

    assert listing.status_code == 200 and tx.encode() in listing.content
    assert detail.status_code == 200
    assert b'name="amount"' not in detail.content and b'name="amount_minor"' not in detail.content
    assert b'name="currency"' not in detail.content and b'name="status"' not in detail.content
    assert operator_client.get("/admin/pay/payment/add/").status_code == 403
    # A forged POST cannot change the money either.
    operator_client.post(f"/admin/pay/payment/{tx}/change/", {"amount": "1.00", "amount_minor": 100})
    assert Payment.objects.for_tenant(alice).get(pk=tx).amount_minor == 500


def test_admin_stores_a_tenants_stripe_key_encrypted(operator_client, alice):
    response = operator_client.post(
        "/admin/pay/paymentsettings/add/",
        {
            "tenant": alice.pk,
            "max_amounts": '{"usd": "250"}',
            "allowed_currencies": '["usd", "EUR"]',
            "stripe_secret_key": "sk_test_alice_own",
            "stripe_webhook_secret": "whsec_alice_own",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    row = PaymentSettings.objects.for_tenant(alice).get()
    assert "sk_test_alice_own" not in row.stripe_secret_key_encrypted
    assert decrypt_text_or_none(row.stripe_secret_key_encrypted) == "sk_test_alice_own"
    assert decrypt_text_or_none(row.stripe_webhook_secret_encrypted) == "whsec_alice_own"
    assert row.max_amounts == {"USD": "250"} and row.allowed_currencies == ["EUR", "USD"]


def test_admin_refuses_bad_limits(operator_client, alice):
    response = operator_client.post(
        "/admin/pay/paymentsettings/add/",
        {"tenant": alice.pk, "max_amounts": '{"XYZ": "5"}', "allowed_currencies": "[]"},
    )
    assert response.status_code == 200 and b"not a currency" in response.content
    assert not PaymentSettings.objects.for_tenant(alice).exists()


def test_a_tenant_with_its_own_key_pays_without_a_platform_key(client_for, alice, charlie, localstripe):
    PaymentSettings.objects.create(
        tenant=alice, stripe_secret_key_encrypted=encrypt_text("sk_test_alice_own")
    )
    with override_settings(
        STRIPE_SECRET_KEY=None, STRIPE_API_BASE=localstripe, STRIPE_LOCALSTRIPE_COMPAT=True
    ):
        alices = client_for(alice).post("/pay", json.dumps(BODY), content_type="application/json")
        charlies = client_for(charlie).post("/pay", json.dumps(BODY), content_type="application/json")

    assert alices.status_code == 200 and alices.json()["status"] == "success"
    assert Payment.objects.for_tenant(alice).get().uses_tenant_key is True
    assert charlies.status_code == 503  # Charlie has no key and the platform has none


def test_secrets_made_with_another_key_read_as_missing(settings):
    token = encrypt_text("sk_test_x")
    settings.SECRET_KEY = "another-secret-key-entirely-0123456789"
    assert decrypt_text_or_none(token) is None
    assert decrypt_text_or_none("") is None
