"""The operators' admin: a new key is shown once, the list shows prefix/scopes/last use, revoke works."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from apps.tenants.authentication import authenticate_key
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> Client:
    user = User.objects.create_superuser("op", "op@example.com", "pw-for-tests-only")
    client = Client()
    client.force_login(user)
    return client


def test_creating_a_key_shows_the_secret_once(operator: Client, alice: Tenant) -> None:
    response = operator.post(
        "/admin/tenants/apikey/add/",
        {
            "tenant": alice.pk,
            "name": "from-admin",
            "scopes_text": "memory.*, chat.read",
            "expires_in_days": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(message) for message in response.context["messages"]]
    shown = [m for m in messages if "shown this once" in m]
    assert len(shown) == 1
    plaintext = shown[0].rsplit(" ", 1)[1]
    record = authenticate_key(plaintext)
    assert record.tenant == alice and record.granted.strings() == ["memory.*", "chat.read"]
    key = ApiKey.objects.for_tenant(alice).get(name="from-admin")
    detail = operator.get(f"/admin/tenants/apikey/{key.pk}/change/").content.decode()
    assert plaintext not in detail and key.prefix in detail


def test_bad_scopes_are_refused_in_the_form(operator: Client, alice: Tenant) -> None:
    response = operator.post(
        "/admin/tenants/apikey/add/", {"tenant": alice.pk, "name": "x", "scopes_text": "memory.user.delete"}
    )
    assert response.status_code == 200
    assert "Invalid scope" in response.content.decode()
    assert ApiKey.objects.for_tenant(alice).count() == 0


def test_list_and_revoke_action(operator: Client, alice: Tenant) -> None:
    issued = api_key_create(tenant=alice, scopes="chat.*", name="listed")
    listing = operator.get("/admin/tenants/apikey/").content.decode()
    assert issued.api_key.prefix in listing and "chat.*" in listing
    operator.post(
        "/admin/tenants/apikey/",
        {"action": "revoke", "_selected_action": [issued.api_key.pk]},
        follow=True,
    )
    assert ApiKey.objects.for_tenant(alice).get().revoked_at is not None
