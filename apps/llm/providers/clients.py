"""SDK clients kept per event loop and configuration.

Building an SDK client costs ~50 ms (it creates an httpx client and an SSL context), far more than
the platform may add to a reply's first token; and an async client belongs to the loop it first
ran on. So each loop keeps its clients, with their connection pools, for as long as it lives.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from apps.llm.providers.base import Provider

T = TypeVar("T")

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)
MAX_PER_LOOP = 256


def client_for(key: tuple[Any, ...], build: Callable[[], T]) -> T:
    loop = asyncio.get_running_loop()
    clients = _clients.setdefault(loop, {})
    client = clients.get(key)
    if client is None:
        if len(clients) >= MAX_PER_LOOP:  # many one-off configurations: start over rather than grow
            clients.clear()
        client = clients[key] = build()
    return client  # type: ignore[no-any-return]


# Streamed replies can be long: the guarded client's default response cap is for tool answers.
MAX_REPLY_BYTES = 32 * 1024 * 1024


def guarded_http_client(timeout: float) -> Any:
    """The SSRF-guarded httpx2 client for an SDK talking to a tenant-chosen base URL."""
    from apps.core.http import sdk_async_client

    return sdk_async_client(timeout=timeout, max_response_bytes=MAX_REPLY_BYTES)


def failure_reason(exc: BaseException) -> str:
    """The SDK's message, or the refusal behind its generic "Connection error." when the SSRF
    guard refused the address (the SDKs keep the real cause in the exception chain)."""
    from apps.core.http import DestinationRefused

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, DestinationRefused):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
    return str(getattr(exc, "message", None) or exc)


class SdkProvider(Provider):
    """A provider backed by an official SDK's async client: one client per event loop and
    configuration, built with the SSRF-guarded HTTP client when the base URL is a tenant's."""

    sdk_class: ClassVar[Callable[..., Any]]
    missing_key: ClassVar[str] = "not-configured"  # the SDKs insist on a key; local servers take any

    def __init__(
        self, *, base_url: str | None, api_key: str | None, timeout: float, guarded: bool = False
    ) -> None:
        self.timeout = timeout
        self.guarded = guarded
        self.base_url = base_url or None
        self.api_key = api_key or self.missing_key

    def _client(self) -> Any:
        return client_for(
            (self.name, self.base_url, self.api_key, self.timeout, self.guarded),
            lambda: self.sdk_class(
                base_url=self.base_url,
                api_key=self.api_key,
                timeout=self.timeout,
                max_retries=0,
                http_client=guarded_http_client(self.timeout) if self.guarded else None,
            ),
        )
