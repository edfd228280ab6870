"""The rate limit's counters counted from the event loop (throttling.count_on_loop) in a real
Redis: the concurrent requests of a loop in one round trip, each its own count."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.cache import caches

from apps.core import loop_io
from apps.core.degraded import redis_breaker
from apps.tenants import throttling
from tests.conftest import free_port


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The keys of each script round trip to Redis."""
    sent: list[list[str]] = []
    real = loop_io.redis_script

    async def recorded(location: str, script: str, keys: list[str], args: list[Any]) -> Any:
        sent.append(list(keys))
        return await real(location, script, keys, args)

    monkeypatch.setattr(loop_io, "redis_script", recorded)
    return sent


def state_in(settings: Any, location: str) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "state": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location},
    }


@pytest.fixture
def breaker_closed_after() -> Iterator[None]:
    throttling._fallback.clear()
    yield
    redis_breaker.succeeded()
    throttling._fallback.clear()


@pytest.mark.asyncio
async def test_concurrent_counts_go_in_one_round_trip_each_with_its_own_count(
    redis_url: str, settings: Any, round_trips: list[list[str]]
) -> None:
    state_in(settings, redis_url)
    caches["state"].clear()
    try:
        counts = await asyncio.gather(
            *(throttling.count_on_loop("rl:t1:k1:9") for _ in range(5)),
            throttling.count_on_loop("rl:t2:k2:9"),
        )
    finally:
        await loop_io.close()
    assert sorted(counts[:5]) == [1, 2, 3, 4, 5]  # a key given twice in a round trip counts twice
    assert counts[5] == 1
    store = caches["state"]
    assert round_trips == [
        [store.make_and_validate_key("rl:t1:k1:9")],  # alone: sent at once
        [store.make_and_validate_key(key) for key in ["rl:t1:k1:9"] * 4 + ["rl:t2:k2:9"]],
    ]
    client = redis.Redis.from_url(redis_url)
    assert int(client.get(store.make_and_validate_key("rl:t1:k1:9"))) == 5
    assert 0 < client.ttl(store.make_and_validate_key("rl:t2:k2:9")) <= throttling.WINDOW_SECONDS + 5
    assert store.get("rl:t1:k1:9") == 5  # read through Django's cache, as the thread path counts


@pytest.mark.asyncio
async def test_counts_waiting_behind_a_failed_round_trip_fall_back_without_asking_redis_again(
    settings: Any, round_trips: list[list[str]], breaker_closed_after: None
) -> None:
    state_in(settings, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        counts = await asyncio.gather(*(throttling.count_on_loop("rl:t1:k1:9") for _ in range(4)))
    finally:
        await loop_io.close()
    assert len(round_trips) == 1  # the first found Redis out; the breaker kept the others here
    assert sorted(counts) == [1, 2, 3, 4]  # this process's counters: the limit still holds
    assert not redis_breaker.available()
