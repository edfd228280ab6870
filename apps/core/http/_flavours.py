"""The guarded transports, built once for httpx and once for httpx2 (the openai and anthropic SDKs'
fork of httpx, with the same API under another name)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Iterator
from types import ModuleType
from typing import Any

import httpcore
import httpcore2
import httpx
import httpx2
from django.conf import settings

from apps.core.http.policy import (
    DestinationRefused,
    ResponseTooLarge,
    TotalTimeout,
    resolve_checked,
    resolve_checked_async,
)


class DestinationRefused2(httpx2.ConnectError, DestinationRefused):  # type: ignore[misc]
    """DestinationRefused for httpx2 clients (an httpx2.ConnectError, so SDKs see a connection error)."""


class ResponseTooLarge2(httpx2.TransportError, ResponseTooLarge):  # type: ignore[misc]
    pass


class TotalTimeout2(httpx2.TimeoutException, TotalTimeout):  # type: ignore[misc]
    pass


def _content_length(headers: Any) -> int | None:
    try:
        return int(headers.get("content-length", ""))
    except ValueError:
        return None


def _total_for(request: Any, default: float | None) -> float:
    # The read timeout of a request is its total (see Flavour.options); a per-request timeout= wins.
    read = request.extensions.get("timeout", {}).get("read")
    total = read if isinstance(read, int | float) else default
    return float(total) if total else float("inf")


class Flavour:
    """Guarded clients for one httpx-compatible library."""

    def __init__(
        self,
        httpx_module: ModuleType,
        httpcore_module: ModuleType,
        refused: type[Exception],
        too_large: type[Exception],
        total_timeout: type[Exception],
    ) -> None:
        self.httpx = httpx_module
        self.limits = httpx_module.Limits(
            max_connections=50, max_keepalive_connections=10, keepalive_expiry=5.0
        )
        lib = httpx_module
        core = httpcore_module
        connect_error = httpx_module.ConnectError
        flavour = self

        class GuardedSyncBackend(core.SyncBackend):  # type: ignore[name-defined,misc]
            """Resolves, checks, and connects to the checked address (never resolves twice)."""

            def connect_tcp(
                self,
                host: str,
                port: int,
                timeout: float | None = None,
                local_address: str | None = None,
                socket_options: Iterable[Any] | None = None,
            ) -> Any:
                last_error: Exception | None = None
                for address in resolve_checked(host, port, refused, connect_error):
                    try:
                        return super().connect_tcp(address, port, timeout, local_address, socket_options)
                    except core.ConnectError as exc:
                        last_error = exc
                assert last_error is not None
                raise last_error

        class GuardedAsyncBackend(core.AnyIOBackend):  # type: ignore[name-defined,misc]
            async def connect_tcp(
                self,
                host: str,
                port: int,
                timeout: float | None = None,
                local_address: str | None = None,
                socket_options: Iterable[Any] | None = None,
            ) -> Any:
                last_error: Exception | None = None
                for address in await resolve_checked_async(host, port, refused, connect_error):
                    try:
                        return await super().connect_tcp(
                            address, port, timeout, local_address, socket_options
                        )
                    except core.ConnectError as exc:
                        last_error = exc
                assert last_error is not None
                raise last_error

        def check_scheme(request: Any) -> None:
            if request.url.scheme not in ("http", "https"):
                raise refused(f"Refused to call {request.url.scheme}:// URLs; only http and https")

        class CappedStream(lib.SyncByteStream):  # type: ignore[name-defined,misc]
            def __init__(self, inner: Any, *, max_bytes: int, deadline: float) -> None:
                self._inner = inner
                self._max_bytes = max_bytes
                self._deadline = deadline

            def __iter__(self) -> Iterator[bytes]:
                received = 0
                for chunk in self._inner:
                    received += len(chunk)
                    if received > self._max_bytes:
                        raise too_large(f"The response is larger than {self._max_bytes} bytes")
                    if time.monotonic() > self._deadline:
                        raise total_timeout("The response took longer than the total timeout")
                    yield chunk

            def close(self) -> None:
                self._inner.close()

        class AsyncCappedStream(lib.AsyncByteStream):  # type: ignore[name-defined,misc]
            def __init__(self, inner: Any, *, max_bytes: int, deadline: float) -> None:
                self._inner = inner
                self._max_bytes = max_bytes
                self._deadline = deadline

            async def __aiter__(self) -> AsyncIterator[bytes]:
                received = 0
                async for chunk in self._inner:
                    received += len(chunk)
                    if received > self._max_bytes:
                        raise too_large(f"The response is larger than {self._max_bytes} bytes")
                    if time.monotonic() > self._deadline:
                        raise total_timeout("The response took longer than the total timeout")
                    yield chunk

            async def aclose(self) -> None:
                await self._inner.aclose()

        class GuardedTransport(lib.HTTPTransport):  # type: ignore[name-defined,misc]
            def __init__(self, *, max_response_bytes: int, total_timeout: float | None) -> None:
                super().__init__(trust_env=False, limits=flavour.limits)
                self._pool = core.ConnectionPool(
                    ssl_context=lib.create_ssl_context(trust_env=False),
                    max_connections=flavour.limits.max_connections,
                    max_keepalive_connections=flavour.limits.max_keepalive_connections,
                    keepalive_expiry=flavour.limits.keepalive_expiry,
                    network_backend=GuardedSyncBackend(),
                )
                self.max_response_bytes = max_response_bytes
                self.total_timeout = total_timeout

            def handle_request(self, request: Any) -> Any:
                check_scheme(request)
                deadline = time.monotonic() + _total_for(request, self.total_timeout)
                response = super().handle_request(request)
                length = _content_length(response.headers)
                if length is not None and length > self.max_response_bytes:
                    response.close()
                    raise too_large(f"The response is larger than {self.max_response_bytes} bytes")
                if time.monotonic() > deadline:
                    response.close()
                    raise total_timeout("The response took longer than the total timeout")
                return lib.Response(
                    status_code=response.status_code,
                    headers=response.headers,
                    stream=CappedStream(
                        response.stream, max_bytes=self.max_response_bytes, deadline=deadline
                    ),
                    extensions=response.extensions,
                )

        class AsyncGuardedTransport(lib.AsyncHTTPTransport):  # type: ignore[name-defined,misc]
            def __init__(self, *, max_response_bytes: int, total_timeout: float | None) -> None:
                super().__init__(trust_env=False, limits=flavour.limits)
                self._pool = core.AsyncConnectionPool(
                    ssl_context=lib.create_ssl_context(trust_env=False),
                    max_connections=flavour.limits.max_connections,
                    max_keepalive_connections=flavour.limits.max_keepalive_connections,
                    keepalive_expiry=flavour.limits.keepalive_expiry,
                    network_backend=GuardedAsyncBackend(),
                )
                self.max_response_bytes = max_response_bytes
                self.total_timeout = total_timeout

            async def handle_async_request(self, request: Any) -> Any:
                check_scheme(request)
                deadline = time.monotonic() + _total_for(request, self.total_timeout)
                response = await super().handle_async_request(request)
                length = _content_length(response.headers)
                if length is not None and length > self.max_response_bytes:
                    await response.aclose()
                    raise too_large(f"The response is larger than {self.max_response_bytes} bytes")
                return lib.Response(
                    status_code=response.status_code,
                    headers=response.headers,
                    stream=AsyncCappedStream(
                        response.stream, max_bytes=self.max_response_bytes, deadline=deadline
                    ),
                    extensions=response.extensions,
                )

        self.transport = GuardedTransport
        self.async_transport = AsyncGuardedTransport

    def options(
        self, timeout: float | None, connect_timeout: float | None, max_response_bytes: int | None
    ) -> tuple[Any, float, int]:
        total = float(timeout if timeout is not None else settings.OUTBOUND_HTTP_TIMEOUT)
        connect = float(
            connect_timeout if connect_timeout is not None else settings.OUTBOUND_HTTP_CONNECT_TIMEOUT
        )
        cap = int(
            max_response_bytes
            if max_response_bytes is not None
            else settings.OUTBOUND_HTTP_MAX_RESPONSE_BYTES
        )
        # Each socket operation waits at most the total; the capped stream enforces the deadline.
        return self.httpx.Timeout(total, connect=min(connect, total)), total, cap

    def client(
        self,
        *,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        max_response_bytes: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """A synchronous client with the SSRF guard, timeouts, size cap and no redirects.

        `timeout` is the total for one request (default SLOP_HTTP_TIMEOUT); close the client (or
        use it as a context manager) when done."""
        httpx_timeout, total, cap = self.options(timeout, connect_timeout, max_response_bytes)
        return self.httpx.Client(
            transport=self.transport(max_response_bytes=cap, total_timeout=total),
            timeout=httpx_timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": f"SLOP-Platform/{settings.VERSION}", **(headers or {})},
        )

    def async_client(
        self,
        *,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        max_response_bytes: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The asynchronous twin of `client`."""
        httpx_timeout, total, cap = self.options(timeout, connect_timeout, max_response_bytes)
        return self.httpx.AsyncClient(
            transport=self.async_transport(max_response_bytes=cap, total_timeout=total),
            timeout=httpx_timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": f"SLOP-Platform/{settings.VERSION}", **(headers or {})},
        )


HTTPX = Flavour(httpx, httpcore, DestinationRefused, ResponseTooLarge, TotalTimeout)
HTTPX2 = Flavour(httpx2, httpcore2, DestinationRefused2, ResponseTooLarge2, TotalTimeout2)
