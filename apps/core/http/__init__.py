"""The one outbound HTTP client: every request the platform makes to a URL a tenant chose.

`guarded_client()` / `guarded_async_client()` return httpx clients, and `sdk_client()` /
`sdk_async_client()` the same for httpx2 (the fork the openai and anthropic SDKs are built on:
`openai.OpenAI(base_url=…, http_client=sdk_client())`). All of them:
- resolve the host themselves and refuse (before any connection is made) loopback, private,
  shared (CGNAT), link-local (169.254.169.254 included), multicast, reserved and unspecified
  addresses, also when wrapped in IPv4-mapped / 6to4 / Teredo / NAT64 IPv6 addresses. The check
  runs at connect time and the connection goes to the very address that was checked, so DNS
  rebinding between a check and the connect is not possible. `SLOP_HTTP_ALLOW_PRIVATE` lets
  loopback and private networks through for development and tests; link-local, multicast and
  reserved addresses stay refused whatever it says;
- have a connect timeout and a total deadline for the whole exchange, cap the response size, and
  never follow redirects or read proxy settings from the environment.

Refusals are `DestinationRefused` (a ConnectError), oversize answers `ResponseTooLarge`, a blown
deadline `TotalTimeout` (a TimeoutException); the httpx2 flavours raise subclasses of both the
httpx2 exception and these, so `except DestinationRefused` works for either.
"""

from __future__ import annotations

import httpx

from apps.core.http._flavours import HTTPX, HTTPX2
from apps.core.http.policy import (
    DestinationRefused,
    ResponseTooLarge,
    TotalTimeout,
    address_refusal,
    outbound_url_problem,
    resolve_checked,
)

# For annotations elsewhere (the lint bans naming httpx.Client outside this package).
GuardedClient = httpx.Client
GuardedAsyncClient = httpx.AsyncClient

guarded_client = HTTPX.client
guarded_async_client = HTTPX.async_client
sdk_client = HTTPX2.client
sdk_async_client = HTTPX2.async_client

__all__ = [
    "DestinationRefused",
    "GuardedAsyncClient",
    "GuardedClient",
    "ResponseTooLarge",
    "TotalTimeout",
    "address_refusal",
    "guarded_async_client",
    "guarded_client",
    "outbound_url_problem",
    "resolve_checked",
    "sdk_async_client",
    "sdk_client",
]
