"""Degraded, not down: what a request answers when PostgreSQL or Redis fails.

- Every wait on them is bounded by settings (connect, pool, statement and socket timeouts), so a
  dependency that stops answering costs a request seconds, not minutes.
- A failure of either, past those bounds, is a 503 `service_unavailable` in the error format,
  with `Retry-After` and the dependency named (`dependency_error`), never a 500 with a trace.
- What only needs Redis as a cache or a counter keeps answering without it: the default cache
  reads as misses, the rate limit counts in-process (apps/tenants/throttling.py). After a Redis
  failure a process stops asking for `SLOP_REDIS_RETRY_AFTER_SECONDS` (`redis_breaker`), so a Redis
  that hangs does not cost every request its socket timeout; then the next call tries again, and
  the platform is back as soon as Redis is, without a restart.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError

from apps.core.errors import ApplicationError

logger = logging.getLogger("slop.degraded")

RETRY_AFTER_SECONDS = 5

try:
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import TimeoutError as _RedisTimeoutError

    REDIS_OUTAGE: tuple[type[BaseException], ...] = (_RedisConnectionError, _RedisTimeoutError)
except ImportError:  # pragma: no cover - redis is a dependency
    REDIS_OUTAGE = ()

try:
    from kombu.exceptions import OperationalError as _BrokerError

    BROKER_OUTAGE: tuple[type[BaseException], ...] = (_BrokerError,)
except ImportError:  # pragma: no cover - celery is a dependency
    BROKER_OUTAGE = ()


class Breaker:
    """After a failure, `available()` is False for `retry_after` seconds; the first call after
    that is the probe. One per dependency and process; a plain float, no lock on the read path."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._down_until = 0.0
        self._lock = threading.Lock()

    def available(self) -> bool:
        return self._down_until <= time.monotonic()

    def failed(self, error: BaseException) -> None:
        retry_after = float(getattr(settings, "SLOP_REDIS_RETRY_AFTER_SECONDS", 5.0))
        with self._lock:
            first = self.available()
            self._down_until = time.monotonic() + retry_after
        if first:  # one line per outage window, not one per request
            logger.warning("%s is unavailable (%s); retrying in %gs", self.name, error, retry_after)

    def succeeded(self) -> None:
        if self._down_until:
            self._down_until = 0.0


redis_breaker = Breaker("Redis")


def service_unavailable(dependency: str, message: str) -> ApplicationError:
    return ApplicationError(
        message,
        code="service_unavailable",
        status=503,
        extra={"dependency": dependency, "retry_after": RETRY_AFTER_SECONDS},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def dependency_error(exc: BaseException) -> ApplicationError | None:
    """The 503 for a failure of PostgreSQL, Redis or the Celery broker; None for anything else."""
    from apps.core.observability.metrics import DEPENDENCY_UNAVAILABLE

    if isinstance(exc, DatabaseOperationalError | DatabaseInterfaceError):
        DEPENDENCY_UNAVAILABLE.labels("database", "503").inc()
        logger.warning("The database is unavailable: %s", exc)
        return service_unavailable("database", "The database is unavailable; try again shortly")
    if REDIS_OUTAGE and isinstance(exc, REDIS_OUTAGE):
        redis_breaker.failed(exc)
        DEPENDENCY_UNAVAILABLE.labels("redis", "503").inc()
        return service_unavailable(
            "redis", "Redis (queue, streams, shared state) is unavailable; try again shortly"
        )
    if BROKER_OUTAGE and isinstance(exc, BROKER_OUTAGE):
        DEPENDENCY_UNAVAILABLE.labels("broker", "503").inc()
        logger.warning("The job queue is unavailable: %s", exc)
        return service_unavailable("broker", "The job queue is unavailable; try again shortly")
    return None
