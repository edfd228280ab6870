"""The one outbound HTTP client: every request the platform makes to a URL a tenant chose.

`guarded_client()` / `guarded_async_client()` return httpx clients that:
- resolve the host themselves and refuse (before any connection is made) loopback, private,
  shared (CGNAT), link-local (169.254.169.254 included), multicast, reserved and unspecified
  addresses, also when wrapped in IPv4-mapped / 6to4 / NAT64 IPv6 addresses; the check runs at
  connect time and the connection goes to the very address that was checked, so DNS rebinding
  between a check and the connect is not possible. `SLOP_HTTP_ALLOW_PRIVATE` lets loopback and
  private networks through for development and tests; link-local, multicast and reserved
  addresses stay refused whatever it says;
- have a connect timeout and a total deadline for the whole exchange, cap the response size, and
  never follow redirects or read proxy settings from the environment.

The clients are plain httpx clients, so they can be handed to SDKs (`openai.OpenAI(http_client=…)`,
`anthropic.Anthropic(http_client=…)`).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DEFAULT_LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=10, keepalive_expiry=5.0)


class DestinationRefused(httpx.ConnectError):
    """The destination resolves to an address the platform does not call. No connection was made."""


class ResponseTooLarge(httpx.TransportError):
    """The answer was bigger than the client's cap; reading stopped there."""


class TotalTimeout(httpx.TimeoutException):
    """The whole exchange took longer than the client's total deadline."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress, *, allow_private: bool | None = None) -> str | None:
    """Why the platform will not connect to this address, or None when it may."""
    if allow_private is None:
        allow_private = bool(getattr(settings, "OUTBOUND_HTTP_ALLOW_PRIVATE", False))
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            reason = address_refusal(inner, allow_private=allow_private)
            if reason:
                return f"{reason} (inside the IPv6 address {address})"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_loopback:
        return None if allow_private else "a loopback address"
    if address.is_private or not address.is_global:
        return None if allow_private else "a private address"
    return None


def _check_addresses(host: str, addresses: Iterable[str]) -> list[str]:
    checked: list[str] = []
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        reason = address_refusal(address)
        if reason:
            # One bad answer refuses the host: a name that also points inside is not called at all.
            raise DestinationRefused(f"Refused to connect to {host}: it resolves to {reason} ({address})")
        if text not in checked:
            checked.append(text)
    if not checked:
        raise DestinationRefused(f"Refused to connect to {host}: it does not resolve to any address")
    return checked


def resolve_checked(host: str, port: int) -> list[str]:
    """The addresses of `host` the platform may connect to; raises DestinationRefused otherwise."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpx.ConnectError(f"Cannot resolve {host}: {exc}") from None
    return _check_addresses(host, (str(info[4][0]) for info in infos))


async def resolve_checked_async(host: str, port: int) -> list[str]:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpx.ConnectError(f"Cannot resolve {host}: {exc}") from None
    return _check_addresses(host, (str(info[4][0]) for info in infos))


class GuardedSyncBackend(httpcore.SyncBackend):
    """Resolves, checks and connects to the checked address (never resolves twice)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for address in resolve_checked(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error


class GuardedAsyncBackend(httpcore.AnyIOBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last_error: Exception | None = None
        for address in await resolve_checked_async(host, port):
            try:
                return await super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error


def _check_scheme(request: httpx.Request) -> None:
    if request.url.scheme not in ("http", "https"):
        raise DestinationRefused(f"Refused to call {request.url.scheme}:// URLs; only http and https")


def _content_length(headers: httpx.Headers) -> int | None:
    try:
        return int(headers.get("content-length", ""))
    except ValueError:
        return None


def _total_for(request: httpx.Request, default: float | None) -> float:
    # The read timeout of a request is its total (see _options); a per-request timeout= wins.
    read = request.extensions.get("timeout", {}).get("read")
    total = read if isinstance(read, int | float) else default
    return float(total) if total else float("inf")


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, *, max_bytes: int, deadline: float) -> None:
        self._inner = inner
        self._max_bytes = max_bytes
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in self._inner:
            received += len(chunk)
            if received > self._max_bytes:
                raise ResponseTooLarge(f"The response is larger than {self._max_bytes} bytes")
            if time.monotonic() > self._deadline:
                raise TotalTimeout("The response took longer than the total timeout")
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncCappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, *, max_bytes: int, deadline: float) -> None:
        self._inner = inner
        self._max_bytes = max_bytes
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._inner:
            received += len(chunk)
            if received > self._max_bytes:
                raise ResponseTooLarge(f"The response is larger than {self._max_bytes} bytes")
            if time.monotonic() > self._deadline:
                raise TotalTimeout("The response took longer than the total timeout")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class GuardedTransport(httpx.HTTPTransport):
    def __init__(self, *, max_response_bytes: int, total_timeout: float | None, verify: bool = True) -> None:
        super().__init__(verify=verify, trust_env=False, limits=_DEFAULT_LIMITS)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=_DEFAULT_LIMITS.max_connections,
            max_keepalive_connections=_DEFAULT_LIMITS.max_keepalive_connections,
            keepalive_expiry=_DEFAULT_LIMITS.keepalive_expiry,
            network_backend=GuardedSyncBackend(),
        )
        self.max_response_bytes = max_response_bytes
        self.total_timeout = total_timeout

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _check_scheme(request)
        deadline = time.monotonic() + _total_for(request, self.total_timeout)
        response = super().handle_request(request)
        length = _content_length(response.headers)
        if length is not None and length > self.max_response_bytes:
            response.close()
            raise ResponseTooLarge(f"The response is larger than {self.max_response_bytes} bytes")
        if time.monotonic() > deadline:
            response.close()
            raise TotalTimeout("The response took longer than the total timeout")
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, max_bytes=self.max_response_bytes, deadline=deadline),
            extensions=response.extensions,
        )


class AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, *, max_response_bytes: int, total_timeout: float | None, verify: bool = True) -> None:
        super().__init__(verify=verify, trust_env=False, limits=_DEFAULT_LIMITS)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=_DEFAULT_LIMITS.max_connections,
            max_keepalive_connections=_DEFAULT_LIMITS.max_keepalive_connections,
            keepalive_expiry=_DEFAULT_LIMITS.keepalive_expiry,
            network_backend=GuardedAsyncBackend(),
        )
        self.max_response_bytes = max_response_bytes
        self.total_timeout = total_timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _check_scheme(request)
        deadline = time.monotonic() + _total_for(request, self.total_timeout)
        response = await super().handle_async_request(request)
        length = _content_length(response.headers)
        if length is not None and length > self.max_response_bytes:
            await response.aclose()
            raise ResponseTooLarge(f"The response is larger than {self.max_response_bytes} bytes")
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_AsyncCappedStream(response.stream, max_bytes=self.max_response_bytes, deadline=deadline),
            extensions=response.extensions,
        )


def _options(
    timeout: float | None, connect_timeout: float | None, max_response_bytes: int | None
) -> tuple[httpx.Timeout, float, int]:
    total = float(timeout if timeout is not None else settings.OUTBOUND_HTTP_TIMEOUT)
    connect = float(
        connect_timeout if connect_timeout is not None else settings.OUTBOUND_HTTP_CONNECT_TIMEOUT
    )
    cap = int(
        max_response_bytes if max_response_bytes is not None else settings.OUTBOUND_HTTP_MAX_RESPONSE_BYTES
    )
    # Each socket operation waits at most the total; the capped stream enforces the total deadline.
    return httpx.Timeout(total, connect=min(connect, total)), total, cap


def guarded_client(
    *,
    timeout: float | None = None,
    connect_timeout: float | None = None,
    max_response_bytes: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Client:
    """A synchronous httpx client with the SSRF guard, timeouts, size cap and no redirects.

    `timeout` is the total for one request (default SLOP_HTTP_TIMEOUT); close the client (or use
    it as a context manager) when done."""
    httpx_timeout, total, cap = _options(timeout, connect_timeout, max_response_bytes)
    return httpx.Client(
        transport=GuardedTransport(max_response_bytes=cap, total_timeout=total),
        timeout=httpx_timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": f"SLOP-Platform/{settings.VERSION}", **(headers or {})},
    )


def guarded_async_client(
    *,
    timeout: float | None = None,
    connect_timeout: float | None = None,
    max_response_bytes: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """The asynchronous twin of `guarded_client` (for SDKs' async clients and async views)."""
    httpx_timeout, total, cap = _options(timeout, connect_timeout, max_response_bytes)
    return httpx.AsyncClient(
        transport=AsyncGuardedTransport(max_response_bytes=cap, total_timeout=total),
        timeout=httpx_timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": f"SLOP-Platform/{settings.VERSION}", **(headers or {})},
    )


def outbound_url_problem(url: str) -> str | None:
    """Why a URL a tenant wants to register cannot be called, or None. Checks the shape and any IP
    literal now; names are checked again (resolved) on every connection."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "the URL must start with http:// or https://"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed; use the signing secret"
    if port == 0:
        return "port 0 is not a valid port"
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None
    reason = address_refusal(address)
    return f"the URL points to {reason}" if reason else None
