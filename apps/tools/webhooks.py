"""Webhook tools: the platform POSTs the call to the tenant's URL, signed, and reads the answer.

Request body: `{"tool": id, "call_id": id, "parameters": {...}}`. Header `X-SLOP-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the tool's signing secret>` (the
Stripe scheme: the receiver recomputes it and refuses old timestamps). The JSON answer becomes the
result; an object with a `result` key gives that value, and an object with only an `error` key is
the tool reporting a failure (502).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from functools import lru_cache
from typing import Any

import httpx
from django.conf import settings

from apps.core.errors import ApplicationError
from apps.core.http import DestinationRefused, GuardedClient, ResponseTooLarge, guarded_client

SIGNATURE_HEADER = "X-SLOP-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a label, not a secret)
DEFAULT_TOLERANCE_SECONDS = 300


def new_signing_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does: recompute the HMAC and refuse stale timestamps (replays)."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", []))


@lru_cache(maxsize=4)
def _client(max_response_bytes: int) -> GuardedClient:
    # One pooled client per process; the total timeout is given per request.
    return guarded_client(max_response_bytes=max_response_bytes)


def upstream_error(
    tool_id: str, reason: str, *, status: int = 502, code: str = "upstream_error"
) -> ApplicationError:
    return ApplicationError(f"Webhook tool {tool_id} failed: {reason}", code=code, status=status)


def call_webhook(
    *, url: str, secret: str, tool_id: str, call_id: str, parameters: dict[str, Any], timeout: float
) -> Any:
    """The tool's result, or an ApplicationError 502/504 that says what went wrong upstream."""
    body = json.dumps({"tool": tool_id, "call_id": call_id, "parameters": parameters}).encode()
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        SIGNATURE_HEADER: signature(secret, int(time.time()), body),
        "X-SLOP-Tool": tool_id,
        "X-SLOP-Call-Id": call_id,
    }
    client = _client(settings.OUTBOUND_HTTP_MAX_RESPONSE_BYTES)
    connect = min(settings.OUTBOUND_HTTP_CONNECT_TIMEOUT, timeout)
    try:
        response = client.post(
            url, content=body, headers=headers, timeout=httpx.Timeout(timeout, connect=connect)
        )
    except DestinationRefused as exc:
        raise upstream_error(tool_id, str(exc), code="destination_refused") from None
    except httpx.TimeoutException:
        raise upstream_error(
            tool_id, f"no answer within {timeout:g} seconds", status=504, code="upstream_timeout"
        ) from None
    except ResponseTooLarge as exc:
        raise upstream_error(tool_id, str(exc)) from None
    except httpx.HTTPError as exc:
        raise upstream_error(tool_id, f"{type(exc).__name__}: {exc}") from None
    except httpx.InvalidURL as exc:
        # Not an HTTPError: a URL stored before today's checks (or written to the database
        # directly) that httpx cannot parse, e.g. the octal host 010.8.8.8.
        raise upstream_error(
            tool_id, f"its URL cannot be called: {exc}", code="invalid_webhook_url"
        ) from None
    except (httpx.StreamError, OSError, ValueError) as exc:
        # Whatever else an exchange can raise is still the upstream's failure, never a 500.
        raise upstream_error(tool_id, f"{type(exc).__name__}: {exc}") from None
    if 300 <= response.status_code < 400:
        raise upstream_error(
            tool_id, f"it answered with a redirect (HTTP {response.status_code}); redirects are not followed"
        )
    if response.status_code >= 400:
        snippet = response.text[:300].strip()
        raise upstream_error(
            tool_id, f"it answered HTTP {response.status_code}" + (f": {snippet}" if snippet else "")
        )
    if response.status_code == 204 or not response.content:
        return None
    try:
        answer = response.json()
    except ValueError:
        raise upstream_error(tool_id, "its answer is not JSON") from None
    if isinstance(answer, dict):
        if "result" in answer:
            return answer["result"]
        if set(answer) <= {"error", "code", "status"} and "error" in answer:
            raise upstream_error(tool_id, f"it reported an error: {str(answer['error'])[:300]}")
    return answer
