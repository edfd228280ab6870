"""Django's cache backends, each operation timed (slop_cache_operation_duration_seconds).

A cache configured with `misses_on_outage` (the default cache: settings.CACHES) reads a Redis
outage as misses and drops writes, and skips Redis altogether while `redis_breaker` says it is
down; any other cache (the state cache) raises, and its callers decide (apps/core/degraded.py).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache.backends import locmem, redis

from apps.core import state_cache
from apps.core.degraded import REDIS_OUTAGE, redis_breaker
from apps.core.observability import metrics

_MISSING: Any = object()
# operation -> what an outage answers when it reads as a miss (_MISSING: the caller's default)
_ON_OUTAGE: dict[str, Any] = {
    "get": _MISSING,
    "get_many": {},
    "set": None,
    "set_many": [],
    "add": False,
    "delete": False,
    "delete_many": None,
    "touch": False,
    "has_key": False,
    "incr": _MISSING,
    "decr": _MISSING,
    "clear": None,
}


def _timed(operation: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        inner = getattr(super(InstrumentedCache, self), operation)
        if self._misses_on_outage and self._is_redis and not redis_breaker.available():
            return _outage_answer(operation, args, kwargs)
        started = time.perf_counter()
        try:
            result = inner(*args, **kwargs)
        except REDIS_OUTAGE as exc:
            metrics.CACHE_ERRORS.labels(self._alias, operation).inc()
            redis_breaker.failed(exc)
            if self._misses_on_outage:
                return _outage_answer(operation, args, kwargs)
            raise
        finally:
            if metrics.enabled():
                elapsed = time.perf_counter() - started
                metrics.CACHE_DURATION.labels(self._alias, operation).observe(elapsed)
        if self._is_redis:
            redis_breaker.succeeded()
        return result

    method.__name__ = operation
    return method


def _outage_answer(operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    answer = _ON_OUTAGE[operation]
    if answer is _MISSING:
        if operation in ("incr", "decr"):
            raise ValueError("the cache is unavailable")  # what incr says of a missing key
        return kwargs.get("default", args[1] if len(args) > 1 else None)
    return answer.copy() if isinstance(answer, dict | list) else answer


class InstrumentedCache:
    """Mixed in before a Django cache backend. OPTIONS: `alias` (the metric label) and
    `misses_on_outage`; both are taken out before the backend sees its options."""

    _alias: str
    _misses_on_outage: bool
    _is_redis: bool

    def __init__(self, location: Any, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS", {}))
        self._alias = str(options.pop("alias", "default"))
        self._misses_on_outage = bool(options.pop("misses_on_outage", False))
        self._is_redis = isinstance(self, redis.RedisCache)
        super().__init__(location, {**params, "OPTIONS": options})  # type: ignore[call-arg]

    for _operation in _ON_OUTAGE:
        locals()[_operation] = _timed(_operation)
    del _operation


class RedisCache(InstrumentedCache, redis.RedisCache):
    pass


class LocMemCache(InstrumentedCache, locmem.LocMemCache):
    pass


class ExpiringLocMemCache(InstrumentedCache, state_cache.ExpiringLocMemCache):
    pass
