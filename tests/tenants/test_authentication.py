"""API-key authentication and scope enforcement as a client sees them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.tenants import authentication
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.services import api_key_create, api_key_revoke
from tests.conftest import SlopClient

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.test_urls")]


def assert_unauthenticated(response: object, message: str) -> None:
    assert response.status_code == 401  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body == {"error": message, "code": "unauthenticated", "status": 401}


def test_no_key_is_401() -> None:
    response = APIClient().get("/_test/memory/user_a")
    assert_unauthenticated(response, "Missing API key: send 'Authorization: Bearer <api key>' or 'X-API-Key'")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Bearer slop_live_abcdefgh_" + "A" * 38, "Token abc", "Bearer "],
)
def test_malformed_or_unknown_key_is_401(header: str) -> None:
    response = APIClient().get("/_test/memory/user_a", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_wrong_secret_with_a_real_prefix_is_401(alice: Tenant, make_key: Callable[..., str]) -> None:
    key = make_key(alice)
    prefix_part, _secret = key.rsplit("_", 1)
    # Same prefix, another well-formed secret: the checksum passes only if we recompute it.
    from apps.tenants.keys import _checksum

    forged_body = f"{prefix_part}_{'B' * 32}"
    forged = forged_body + _checksum(forged_body)
    response = SlopClient().with_key(forged).get("/_test/memory/user_a")
    assert_unauthenticated(response, "Invalid API key")


def test_valid_key_by_bearer_or_x_api_key(alice: Tenant, make_key: Callable[..., str]) -> None:
    key = make_key(alice)
    assert SlopClient().with_key(key).get("/_test/memory/user_a").json() == {
        "key": "user_a",
        "tenant": alice.slug,
    }
    response = APIClient().get("/_test/memory/user_a", HTTP_X_API_KEY=key)
    assert response.status_code == 200


def test_revoked_key_is_refused_within_the_cache_window(alice: Tenant, make_key: Callable[..., str]) -> None:
    key = make_key(alice)
    client = SlopClient().with_key(key)
    assert client.get("/_test/memory/a").status_code == 200
    api_key_revoke(prefix=ApiKey.objects.for_tenant(alice).get().prefix)
    # Another process may still hold the key in its cache, but never longer than 5 seconds.
    later = authentication.time.monotonic() + 5.01
    with mock.patch.object(authentication.time, "monotonic", return_value=later):
        assert_unauthenticated(client.get("/_test/memory/a"), "API key has been revoked")


def test_expired_key_is_401(alice: Tenant) -> None:
    issued = api_key_create(tenant=alice, scopes="*", expires_in_days=1)
    ApiKey.objects.for_tenant(alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_unauthenticated(
        SlopClient().with_key(issued.plaintext).get("/_test/memory/a"), "API key has expired"
    )


def test_inactive_tenant_keys_are_refused(alice: Tenant, make_key: Callable[..., str]) -> None:
    key = make_key(alice)
    Tenant.objects.filter(pk=alice.pk).update(is_active=False)
    assert SlopClient().with_key(key).get("/_test/memory/a").status_code == 401


def test_no_plaintext_key_anywhere_in_the_database(alice: Tenant) -> None:
    issued = api_key_create(tenant=alice, scopes="*")
    secret_part = issued.plaintext.rsplit("_", 1)[1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(k)::text FROM tenants_apikey k")
        rows = [row[0] for row in cursor.fetchall()]
    assert rows and all(secret_part not in row and issued.plaintext not in row for row in rows)


def test_last_used_at_is_recorded(alice: Tenant, make_key: Callable[..., str]) -> None:
    key = make_key(alice)
    SlopClient().with_key(key).get("/_test/memory/a")
    assert ApiKey.objects.for_tenant(alice).get().last_used_at is not None


def test_limited_key_gets_the_seed_scope_violation(
    client_for: Callable[..., SlopClient], alice: Tenant
) -> None:
    client = client_for(alice, "memory.user.*")
    assert client.get("/_test/memory/user_preference").status_code == 200
    response = client.post("/_test/tools/system-cmd", {"cmd": "rm -rf /"}, format="json")
    assert response.status_code == 403
    assert response.json() == {
        "error": "Scope violation: tools.system-cmd.execute requires explicit permission",
        "permitted": False,
        "required_scope": "tools.system-cmd.execute",
        "code": "scope_violation",
        "status": 403,
    }
    assert client.get("/_test/memory/thread:1").status_code == 403


def test_header_cannot_widen_a_key(client_for: Callable[..., SlopClient], alice: Tenant) -> None:
    client = client_for(alice, "memory.user.*", scope_header="*")
    assert client.post("/_test/tools/calculator", {}, format="json").status_code == 403
    assert client.get("/_test/memory/thread:1").status_code == 403
    assert client.get("/_test/memory/user_a").status_code == 200


def test_header_narrows_a_key(client_for: Callable[..., SlopClient], alice: Tenant) -> None:
    client = client_for(alice, "*", scope_header="tools.calculator.execute")
    assert client.post("/_test/tools/calculator", {"expression": "2 + 2"}, format="json").status_code == 200
    response = client.post("/_test/tools/system-cmd", {"cmd": "rm -rf /"}, format="json")
    assert response.status_code == 403 and response.json()["permitted"] is False
    assert client.get("/_test/memory/user_a").status_code == 403


@pytest.mark.parametrize("header", ["memory.user.delete", "nope.read", "tools.*.execute", ""])
def test_malformed_header_is_400_naming_the_scope(
    client_for: Callable[..., SlopClient], alice: Tenant, header: str
) -> None:
    response = client_for(alice, "*", scope_header=header).get("/_test/memory/user_a")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_scope"
    assert "X-SLOP-Scope" in body["error"]
