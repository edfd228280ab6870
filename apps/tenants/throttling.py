"""Rate limits: requests per minute per API key (a tenant may have its own), and per client address
for anonymous calls. Counters live in the cache, so they are shared by every process when Redis is
configured and per process in the embedded default."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.tenants.authentication import Principal

WINDOW_SECONDS = 60


class RateLimit(BaseThrottle):
    def __init__(self) -> None:
        self._wait = 0.0

    def allow_request(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if isinstance(principal, Principal):
            limit = principal.tenant.rate_limit_per_minute or settings.RATE_LIMIT_PER_MINUTE
            bucket = f"rl:t{principal.tenant.pk}:k{principal.key_id}"
        else:
            limit = settings.ANON_RATE_LIMIT_PER_MINUTE
            bucket = f"rl:anon:{self.get_ident(request)}"
        if limit <= 0:
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"{bucket}:{window}"
        cache.add(key, 0, timeout=WINDOW_SECONDS + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr: start again
            cache.set(key, 1, timeout=WINDOW_SECONDS + 5)
            count = 1
        if count > limit:
            self._wait = (window + 1) * WINDOW_SECONDS - now
            return False
        return True

    def wait(self) -> float | None:
        return max(1.0, self._wait)
