"""Limits on the account forms per client address: failed sign-ins, sign-ups, password-reset
e-mails and new accounts from invitations, SLOP_CONSOLE_AUTH_LIMIT_PER_MINUTE of each a minute
(0: no limit). Guessing passwords, filling the database with accounts or someone's inbox with
reset e-mails then takes a lifetime.

Counted in the "state" cache (Redis when configured, so every process shares the counts). If that
Redis is down the limit fails open, as the API's rate limits do: nobody is locked out of signing in
because Redis is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest

from apps.core.client_address import request_client_address
from apps.core.degraded import REDIS_OUTAGE, redis_breaker

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Window:
    key: str
    retry_after: int


def _window(request: HttpRequest, action: str) -> Window:
    now = time.time()
    number = int(now // WINDOW_SECONDS)
    address = request_client_address(request.META)
    return Window(f"console:{action}:{address}:{number}", max(1, int((number + 1) * WINDOW_SECONDS - now)))


def exhausted(request: HttpRequest, action: str) -> int | None:
    """Seconds until the address may try `action` again, or None when it may now."""
    limit = settings.SLOP_CONSOLE_AUTH_LIMIT_PER_MINUTE
    if limit <= 0 or not redis_breaker.available():
        return None
    window = _window(request, action)
    try:
        used = int(caches["state"].get(window.key) or 0)
    except REDIS_OUTAGE as exc:
        redis_breaker.failed(exc)
        return None
    return window.retry_after if used >= limit else None


def count(request: HttpRequest, action: str) -> None:
    """One more `action` from this address in the current minute."""
    if settings.SLOP_CONSOLE_AUTH_LIMIT_PER_MINUTE <= 0 or not redis_breaker.available():
        return
    window = _window(request, action)
    store = caches["state"]
    try:
        store.add(window.key, 0, timeout=WINDOW_SECONDS + 5)
        try:
            store.incr(window.key)
        except ValueError:  # expired between add and incr
            store.set(window.key, 1, timeout=WINDOW_SECONDS + 5)
    except REDIS_OUTAGE as exc:
        redis_breaker.failed(exc)


def message(seconds: int) -> str:
    return f"Too many attempts from your address. Try again in {seconds} seconds."
