"""Billing's way to Stripe: the platform's account (STRIPE_SECRET_KEY), through the official SDK.

Pay has its own gateway for the charges teams make; billing cannot import it (pay sits above
billing in the layers), and needs only the platform's key. What Stripe answers becomes the
platform's errors: not configured → 503 naming the setting, unreachable → 502, too slow → 504,
refused → 502 with Stripe's reason (our request was wrong, not the caller's).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import stripe
from django.conf import settings

from apps.core.errors import ApplicationError

T = TypeVar("T")


def not_configured(setting: str, why: str) -> ApplicationError:
    return ApplicationError(
        f"Billing is not configured on this server: set {setting} ({why})",
        code="billing_not_configured",
        status=503,
        extra={"setting": setting},
    )


def require_setting(name: str, why: str) -> str:
    value = getattr(settings, name, None)
    if not value:
        raise not_configured(name, why)
    return str(value)


@functools.cache
def _http_client(timeout: float) -> stripe.HTTPXClient:
    return stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True)


def stripe_client() -> stripe.StripeClient:
    """The platform account's client; 503 billing_not_configured without STRIPE_SECRET_KEY."""
    key = require_setting("STRIPE_SECRET_KEY", "the platform's Stripe secret key, sk_live_… or sk_test_…")
    base = settings.STRIPE_API_BASE
    return stripe.StripeClient(
        key,
        base_addresses={"api": base} if base else None,
        http_client=_http_client(settings.STRIPE_TIMEOUT_SECONDS),
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
    )


def stripe_error(exc: stripe.StripeError) -> ApplicationError:
    if isinstance(exc, stripe.APIConnectionError):
        if isinstance(exc.__cause__, httpx.TimeoutException):
            return ApplicationError(
                f"Stripe did not answer within {settings.STRIPE_TIMEOUT_SECONDS:g}s",
                code="stripe_timeout",
                status=504,
            )
        return ApplicationError("Stripe could not be reached", code="stripe_unavailable", status=502)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return ApplicationError(
            "Stripe refused the platform's secret key (STRIPE_SECRET_KEY)",
            code="stripe_unavailable",
            status=502,
        )
    status = exc.http_status or 0
    reason = exc.user_message or str(exc) or "no reason"
    return ApplicationError(
        f"Stripe answered {status or 'an error'}: {reason}",
        code="stripe_unavailable",
        status=502,
        extra={"upstream_status": status} if status else None,
    )


def call(operation: Callable[[], T]) -> T:
    """Run one SDK call; Stripe's failures become the platform's 502/504."""
    try:
        return operation()
    except stripe.StripeError as exc:
        raise stripe_error(exc) from None


def as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, stripe.StripeObject):
        return value.to_dict()
    return dict(value) if isinstance(value, dict) else {}
