"""Rate limits: requests per minute per API key (a tenant may have its own), and per client address
for key-less calls (anonymous ones, and each tenant's public surface separately).

The limit of a key: its tenant's own (set in the admin), else what the tenant's plan allows (a
lookup billing registers with `register_plan_rate_limit`, since billing sits above tenants), else
the platform's SLOP_RATE_LIMIT_PER_MINUTE.

Counters live in the "state" cache, never the evictable default one (settings.CACHES): Redis when
configured, so every process shares them, else an in-process store that drops only expired
entries. The client address is the socket peer unless it is a trusted proxy (client_address).

When the state cache's Redis fails (down, or not answering within SLOP_REDIS_SOCKET_TIMEOUT) the
limit fails open to counters of this process alone: a request is never refused, nor answered
500, because Redis is gone, and each process still holds its clients to the limit. Quotas, the
limit that costs money, are counted in PostgreSQL (apps/billing). The process asks Redis again
after SLOP_REDIS_RETRY_AFTER_SECONDS (apps/core/degraded.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.core import loop_io
from apps.core.client_address import request_client_address
from apps.core.degraded import REDIS_OUTAGE, redis_breaker
from apps.core.observability.metrics import CACHE_DURATION, CACHE_ERRORS, DEPENDENCY_UNAVAILABLE
from apps.core.observability.metrics import enabled as metrics_enabled
from apps.core.state_cache import ExpiringLocMemCache
from apps.tenants.authentication import Principal
from apps.tenants.models import Tenant

WINDOW_SECONDS = 60

# The tenant's plan's requests per minute per key, or None for "the platform's default".
PlanRateLimit = Callable[[Tenant], int | None]
_plan_rate_limit: PlanRateLimit | None = None


def register_plan_rate_limit(lookup: PlanRateLimit | None) -> None:
    """Billing's AppConfig.ready() gives the limiter its plan lookup (None takes it away)."""
    global _plan_rate_limit
    _plan_rate_limit = lookup


def key_rate_limit(tenant: Tenant) -> int:
    """Requests per minute per API key of this tenant (0: unlimited)."""
    if tenant.rate_limit_per_minute:
        return int(tenant.rate_limit_per_minute)
    plan_limit = _plan_rate_limit(tenant) if _plan_rate_limit is not None else None
    return int(plan_limit) if plan_limit else int(settings.RATE_LIMIT_PER_MINUTE)


def _clock() -> float:  # one place to read the time, so tests can hold a window still
    return time.time()


# Where counts go while the state cache's Redis is unavailable.
_fallback = ExpiringLocMemCache("slop-rate-limit-fallback", {})


def _count(key: str) -> int:
    store = caches["state"]
    if not redis_breaker.available() and _uses_redis(store):
        DEPENDENCY_UNAVAILABLE.labels("redis", "rate_limit_in_process").inc()
        return _count_in(_fallback, key)
    try:
        return _count_in(store, key)
    except REDIS_OUTAGE as exc:
        redis_breaker.failed(exc)
        DEPENDENCY_UNAVAILABLE.labels("redis", "rate_limit_in_process").inc()
        return _count_in(_fallback, key)


def _uses_redis(store: Any) -> bool:
    return isinstance(store, RedisCache)


def _count_in(store: Any, key: str) -> int:
    if _uses_redis(store):
        return _count_in_redis(store, key)
    store.add(key, 0, timeout=WINDOW_SECONDS + 5)
    try:
        return int(store.incr(key))
    except ValueError:  # expired between add and incr: this request starts the window again
        store.set(key, 1, timeout=WINDOW_SECONDS + 5)
        return 1


# INCR, and the window's expiry, in one command (atomic: no counter is left without one), for
# each key given: the counts, in order (a key given twice counts twice).
_INCR_WITH_EXPIRY = """
local counts = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[1]) end
  counts[i] = count
end
return counts
"""


def _count_in_redis(store: RedisCache, key: str) -> int:
    """One round trip (a script: INCR, and EXPIRE on a window's first request) on the key Django's
    cache would use, so the counter reads as an int through the cache too. Django's add() then
    incr() took three (SET NX, EXISTS, INCR) and built a client object for each: ~500 µs of CPU a
    request against ~40 µs (bench/request_cost.py)."""
    script = getattr(store, "_slop_rate_limit_script", None)
    if script is None:
        redis_cache: Any = store._cache  # Django's client: its pool, and the redis-py class it uses
        client = redis_cache._client(connection_pool=redis_cache._get_connection_pool(write=True))
        script = client.register_script(_INCR_WITH_EXPIRY)
        store._slop_rate_limit_script = script  # type: ignore[attr-defined]  # per cache object
    redis_key = store.make_and_validate_key(key)
    started = time.perf_counter()
    try:
        (count,) = script(keys=[redis_key], args=[WINDOW_SECONDS + 5])
    except REDIS_OUTAGE:
        CACHE_ERRORS.labels("state", "incr").inc()
        raise
    finally:
        if metrics_enabled():
            CACHE_DURATION.labels("state", "incr").observe(time.perf_counter() - started)
    redis_breaker.succeeded()
    return int(count)


def bucket_of(request: Any) -> tuple[str, int]:
    """The counter a request counts on (without its window) and its limit a minute (0: none), from
    its `auth` (a Principal, or none) and, for key-less calls, its client address (`META`)."""
    principal = request.auth
    if isinstance(principal, Principal) and principal.key_id is not None:
        return f"rl:t{principal.tenant.pk}:k{principal.key_id}", key_rate_limit(principal.tenant)
    if isinstance(principal, Principal) and principal.user_id is not None:
        # A console member's ticket: a member is limited like a key of the team, not like the
        # anonymous public surface.
        return f"rl:t{principal.tenant.pk}:u{principal.user_id}", key_rate_limit(principal.tenant)
    if isinstance(principal, Principal):  # a tenant's public surface, per client address
        bucket = f"rl:t{principal.tenant.pk}:pub:{request_client_address(request.META)}"
        return bucket, settings.ANON_RATE_LIMIT_PER_MINUTE
    return f"rl:anon:{request_client_address(request.META)}", settings.ANON_RATE_LIMIT_PER_MINUTE


def seconds_to_wait(count: int, limit: int, now: float) -> float | None:
    """None when the `count`th request of the window that holds `now` is within `limit`; else how
    long until the next window (RateLimit.wait() answers at least a second)."""
    if count <= limit:
        return None
    return (int(now // WINDOW_SECONDS) + 1) * WINDOW_SECONDS - now


_state: list[Any] = [None, None, None]  # settings.CACHES["state"], its cache, its Redis URL (or None)


def _state_store() -> tuple[Any, str | None]:
    """The state cache and, when it is Redis, its URL. Kept while the setting is the same object:
    on the event loop `caches[...]` is per task (an asgiref Local), which made one a request."""
    config = settings.CACHES["state"]
    if _state[0] is not config:
        store: Any = caches["state"]
        _state[:] = [config, store, store._servers[0] if _uses_redis(store) else None]
    return _state[1], _state[2]


async def count_on_loop(key: str) -> int:
    """`_count(key)` for code on the event loop: Redis through asyncio (apps.core.loop_io), the
    same script on the same key, and the same fall back to this process's counters. The event
    loop's concurrent requests are counted in one round trip (loop_io.Gathered)."""
    store, location = _state_store()
    if location is None:
        return _count_in(store, key)
    count: int | None = None
    try:
        count = await _counter_of(location)(store.make_and_validate_key(key))
    except REDIS_OUTAGE as exc:
        CACHE_ERRORS.labels("state", "incr").inc()
        redis_breaker.failed(exc)
    if count is None:
        DEPENDENCY_UNAVAILABLE.labels("redis", "rate_limit_in_process").inc()
        return _count_in(_fallback, key)
    redis_breaker.succeeded()
    return count


_counters: dict[str, loop_io.Gathered[str, int | None]] = {}


def _counter_of(location: str) -> loop_io.Gathered[str, int | None]:
    """The counts of the Redis at `location`: for each key, its count, or None while the breaker
    says Redis is out (a call that waited behind one that found it out is not sent)."""
    counter = _counters.get(location)
    if counter is None:

        async def count(keys: Sequence[str]) -> list[int | None]:
            if not redis_breaker.available():
                return [None] * len(keys)
            started = time.perf_counter()
            try:
                counts = await loop_io.redis_script(
                    location, _INCR_WITH_EXPIRY, list(keys), [WINDOW_SECONDS + 5]
                )
            finally:
                if metrics_enabled():  # one operation: the round trip
                    duration.observe(time.perf_counter() - started)
            return [int(count) for count in counts]

        duration = CACHE_DURATION.labels("state", "incr")

        counter = _counters[location] = loop_io.Gathered("rate_limit", count)
    return counter


# A count taken back: DECR on a counter still there (one whose window expired is not made again,
# without its expiry).
_DECR_IF_PRESENT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
"""


async def uncount_on_loop(key: str) -> None:
    """Takes back one count_on_loop(key): a request the event loop counted and then handed to the
    thread path, which counts it. Where the count was taken (Redis, or this process's counters
    while Redis is out), and an outage now only leaves that one count standing."""
    store, location = _state_store()
    if location is not None and redis_breaker.available():
        try:
            await loop_io.redis_script(location, _DECR_IF_PRESENT, [store.make_and_validate_key(key)], [])
            return
        except REDIS_OUTAGE as exc:
            CACHE_ERRORS.labels("state", "decr").inc()
            redis_breaker.failed(exc)
            return
    with contextlib.suppress(ValueError):  # expired meanwhile: nothing to take back
        (store if location is None else _fallback).decr(key)


class RateLimit(BaseThrottle):
    def __init__(self) -> None:
        self._wait = 0.0

    def allow_request(self, request: Request, view: Any) -> bool:
        bucket, limit = bucket_of(request)
        if limit <= 0:
            return True
        now = _clock()
        wait = seconds_to_wait(_count(f"{bucket}:{int(now // WINDOW_SECONDS)}"), limit, now)
        if wait is not None:
            self._wait = wait
            return False
        return True

    def wait(self) -> float | None:
        return max(1.0, self._wait)
