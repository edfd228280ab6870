"""Rate limits answer 429 with Retry-After, per key, and a tenant's own limit wins."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.cache import cache, caches
from django.test import Client
from django.test.utils import override_settings

from apps.tenants.models import Tenant
from tests.conftest import SlopClient

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    cache.clear()
    caches["state"].clear()  # the counters (in-process in tests: no REDIS_URL)


@override_settings(RATE_LIMIT_PER_MINUTE=3)
def test_a_key_over_its_limit_gets_429(client_for: Callable[..., SlopClient], alice: Tenant) -> None:
    client = client_for(alice)
    assert [client.get("/info").status_code for _ in range(3)] == [200, 200, 200]
    response = client.get("/info")
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "rate_limited" and body["retry_after"] >= 1
    assert int(response["Retry-After"]) == body["retry_after"]
    # Another key (and so another tenant) is not affected.
    assert client_for(alice).get("/info").status_code == 200


@override_settings(RATE_LIMIT_PER_MINUTE=1)
def test_a_tenant_limit_wins(client_for: Callable[..., SlopClient], alice: Tenant) -> None:
    Tenant.objects.filter(pk=alice.pk).update(rate_limit_per_minute=5)
    client = client_for(alice)
    assert [client.get("/info").status_code for _ in range(6)] == [200] * 5 + [429]


@override_settings(ANON_RATE_LIMIT_PER_MINUTE=2)
def test_anonymous_calls_are_limited_per_address() -> None:
    statuses = [Client().get("/info").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert Client().get("/healthz").status_code == 200  # health checks are never limited
