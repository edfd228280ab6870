"""Rate-limit counters and chat tickets survive a burst of anonymous traffic: nothing whose loss
changes behaviour lives in the evictable default cache (LocMem keeps 300 entries)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.test import Client
from django.test.utils import override_settings

from apps.core.state_cache import ExpiringLocMemCache
from apps.tenants.models import Tenant
from tests.conftest import SlopClient

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_rate_window")]
BURST = 400  # more distinct addresses than LocMem's 300 entries


def _burst() -> None:
    for n in range(BURST):
        Client(REMOTE_ADDR=f"198.18.{n // 250}.{n % 250 + 1}").get("/info")
    assert len(caches["state"]._cache) >= BURST  # type: ignore[attr-defined]  # one counter each


# pyproject's pytest env turns the anonymous limit off; the burst must create counters.
@override_settings(RATE_LIMIT_PER_MINUTE=5, ANON_RATE_LIMIT_PER_MINUTE=1000)
def test_a_burst_of_anonymous_addresses_does_not_reset_a_keys_counter(
    client_for: Callable[..., SlopClient], alice: Tenant
) -> None:
    client = client_for(alice)
    assert [client.get("/info").status_code for _ in range(4)] == [200] * 4
    _burst()
    assert [client.get("/info").status_code for _ in range(2)] == [200, 429]


@override_settings(ANON_RATE_LIMIT_PER_MINUTE=1000)
def test_a_burst_of_anonymous_addresses_does_not_evict_a_live_ticket(
    client_for: Callable[..., SlopClient], alice: Tenant
) -> None:
    ticket = client_for(alice, "chat.*").post("/chat/tickets").json()["ticket"]
    _burst()
    response = Client().get("/chat/stream", {"ticket": ticket, "last_event_id": "chat_00:1"})
    # authenticated by the ticket: the resume is looked up (and not found), not refused as 401
    assert response.status_code == 404, response.content


def test_the_state_store_keeps_every_live_entry_and_drops_expired_ones() -> None:
    store = ExpiringLocMemCache("test-state", {"OPTIONS": {"MAX_ENTRIES": 10}})
    store.clear()
    for n in range(50):
        store.set(f"short{n}", n, timeout=0.05)
    time.sleep(0.1)
    for n in range(50):
        store.set(f"live{n}", n, timeout=60)
    assert all(store.get(f"live{n}") == n for n in range(50))
    assert len(store._cache) == 50  # the expired ones were swept when the store filled up
    with pytest.raises(ValueError):
        store.set("forever", 1, timeout=None)


def test_with_redis_the_counters_live_in_the_state_redis(
    redis_url: str, client_for: Callable[..., SlopClient], alice: Tenant, settings: Any
) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "state": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url},
    }
    settings.RATE_LIMIT_PER_MINUTE = 3
    caches["state"].clear()
    client = client_for(alice)
    assert [client.get("/info").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert any(b":k" in key for key in redis.Redis.from_url(redis_url).keys("*rl:t*"))
