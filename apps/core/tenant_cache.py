"""Per-process snapshots of a tenant's configuration, trusted for a few seconds.

The start of every chat reads configuration that rarely changes (the tenant's models, its tools):
two queries that were a quarter of the time the platform added to a reply's first token. A process
keeps what it read for SLOP_TENANT_CONFIG_CACHE_SECONDS (5 s, like API keys). A change saved in
this process drops the tenant's snapshot at once (the owning app connects its models' post_save and
post_delete to `forget_changed`), and every web process's when it commits (apps.core.invalidation,
PostgreSQL NOTIFY); a process that hears those keeps a snapshot up to
SLOP_TENANT_CONFIG_CACHE_LISTENING_SECONDS, one that does not sees changes within the TTL.
Whatever is decided by a snapshot is checked again where it matters: a tool is looked up afresh
when it runs.

Snapshots are shared by every request of the process: loaders return immutable values.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.conf import settings

from apps.core import invalidation

T = TypeVar("T")

_all: list[TenantSnapshots[object]] = []
_count = 0


class TenantSnapshots(Generic[T]):
    MAX_TENANTS = 10_000  # past this, expired snapshots are swept out

    def __init__(self, load: Callable[[int], T]) -> None:
        self._load = load
        self._entries: dict[int, tuple[float, T]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by forget(): a load that raced with it is not kept
        _all.append(self)  # type: ignore[arg-type]
        self._topic = f"tenant_snapshots_{len(_all)}"  # the same in every process: modules load alike
        invalidation.register(self._topic, self._forget_heard)

    def get(self, tenant_id: int) -> T:
        ttl = (
            settings.SLOP_TENANT_CONFIG_CACHE_LISTENING_SECONDS
            if invalidation.listening()
            else settings.SLOP_TENANT_CONFIG_CACHE_SECONDS
        )
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(tenant_id)
            generation = self._generation
        if entry is not None and now - entry[0] < ttl:
            return entry[1]
        value = self._load(tenant_id)
        if ttl > 0:
            with self._lock:
                if generation == self._generation:
                    if len(self._entries) >= self.MAX_TENANTS:
                        self._entries = {k: v for k, v in self._entries.items() if now - v[0] < ttl}
                    self._entries[tenant_id] = (now, value)
        return value

    def forget_changed(self, tenant_id: int) -> None:
        """For a save or delete signal: now, and again when the transaction commits (a snapshot
        taken in between would hold the old rows), in this process and every listening one."""
        invalidation.invalidate(self._topic, str(tenant_id))

    def _forget_heard(self, tenant_id: str | None) -> None:
        self.forget(int(tenant_id) if tenant_id is not None else None)

    def forget(self, tenant_id: int | None = None) -> None:
        with self._lock:
            self._generation += 1
            if tenant_id is None:
                self._entries.clear()
            else:
                self._entries.pop(tenant_id, None)


def forget_all() -> None:
    """Drop every snapshot of every tenant (tests; after bulk changes that send no signals)."""
    for snapshots in _all:
        snapshots.forget()
