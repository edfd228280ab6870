"""SDK clients kept per event loop and configuration.

Building an SDK client costs ~50 ms (it creates an httpx client and an SSL context), far more than
the platform may add to a reply's first token; and an async client belongs to the loop it first
ran on. So each loop keeps its clients, with their connection pools, for as long as it lives.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

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
