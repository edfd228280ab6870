"""The in-process store for state whose loss changes behaviour (rate-limit counters), used when
there is no Redis: Django's local-memory cache, except that it never drops a live entry.

LocMemCache keeps MAX_ENTRIES (300) and, when full, culls a third of them, live or not: a burst of
anonymous addresses used to reset every key's rate-limit counter. Here a full store first sweeps the
expired entries; if most are still live it raises its threshold instead of dropping any, so memory
is bounded by expiry (every entry must have a timeout), not by count.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache


class ExpiringLocMemCache(LocMemCache):
    # LocMemCache's internals, which django-stubs does not declare.
    _cache: dict[str, bytes]
    _expire_info: dict[str, float | None]
    _max_entries: int

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        params = {**params, "OPTIONS": {"MAX_ENTRIES": 1000, **params.get("OPTIONS", {})}}
        super().__init__(name, params)

    def get_backend_timeout(self, timeout: Any = DEFAULT_TIMEOUT) -> float | None:
        expiry = super().get_backend_timeout(timeout)
        if expiry is None:
            raise ValueError("state entries must expire: give every one a timeout")
        return expiry

    def _cull(self) -> None:
        # Called by _set() under the lock when the store holds MAX_ENTRIES entries.
        now = time.time()
        for key in [key for key, expiry in self._expire_info.items() if expiry is not None and expiry <= now]:
            del self._cache[key]
            del self._expire_info[key]
        if len(self._cache) * 2 >= self._max_entries:
            self._max_entries *= 2  # mostly live: make room rather than forget something
