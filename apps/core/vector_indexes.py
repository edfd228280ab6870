"""A tenant with many rows gets an HNSW index of its own, on any table with a vector column.

The shared index covers every tenant, and pgvector filters after the index scan: a tenant owning
10 % of the table needs a scan of ~k / 0.1 x over-fetch rows of everyone's to fill its top k, which
is slow and still misses some. A partial index `WHERE tenant_id = N` holds only that tenant's rows,
so a scan with a small `ef_search` is fast and close to exact.

A feature app describes its table once as a `TenantVectorIndexes` (memory items, resource chunks)
and keeps the indexes in step with the data through `sync()` (a Celery beat task and a management
command in that app): built CONCURRENTLY (writes go on) for tenants at or above the row threshold,
dropped when a tenant shrinks below half of it or is gone, and rebuilt when a concurrent build
failed and left an invalid index. One sync per table at a time across every process (a session
advisory lock). The catalog is the registry; each process keeps what it read of it in memory for
cache-seconds (a lookup per query in a shared cache was a network round trip per query, two for
memory), and a sync that changed it tells every listening process at once
(apps/core/invalidation.py), so a new index serves within milliseconds where that is heard and
within cache-seconds where it is not. A stale view costs speed, never results: a query planned
for an index that is gone is still answered (without it), and one planned without a new index
takes the exact path.

Queries must repeat the predicate with the tenant id as a literal (`tenant_id = 42`, never a bound
parameter): the planner matches a partial index's predicate against constants only.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from apps.core import invalidation

logger = logging.getLogger(__name__)


@dataclass
class SyncReport:
    built: dict[int, float] = field(default_factory=dict)  # tenant id -> seconds
    dropped: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    skipped: bool = False  # another sync holds the lock


@dataclass
class _Seen:
    """What one process last read of one table's catalog."""

    at: float = -1e18
    tenants: frozenset[int] = frozenset()
    generation: int = 0  # bumped by forget(): a read that raced with it is not kept
    lock: threading.Lock = field(default_factory=threading.Lock)


_seen: dict[str, _Seen] = {}


@dataclass(frozen=True)
class TenantVectorIndexes:
    """The per-tenant partial HNSW indexes of one table.

    Thresholds are read from settings by name at each call, so they follow `override_settings`."""

    table: str
    index_prefix: str
    cache_key: str  # names this table's catalog view (and its invalidation topic)
    lock_key: int  # any constant unique to this table's sync
    min_rows_setting: str
    cache_seconds_setting: str
    build_memory_setting: str
    label: str  # what the rows are, for logs: "memory", "resource chunks"
    column: str = "embedding"

    def index_name(self, tenant_id: int) -> str:
        return f"{self.index_prefix}{int(tenant_id)}"

    def min_rows(self) -> int:
        return int(getattr(settings, self.min_rows_setting))

    def catalog(self) -> dict[int, bool]:
        """Tenant id -> whether its index is valid (a failed CONCURRENTLY build leaves it invalid)."""
        pattern = re.compile(rf"^{re.escape(self.index_prefix)}(\d+)$")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indrelid = %s::regclass AND c.relname LIKE %s",
                [self.table, self.index_prefix.replace("_", "\\_") + "%"],
            )
            rows = cursor.fetchall()
        found = {}
        for name, valid in rows:
            match = pattern.match(name)
            if match:
                found[int(match.group(1))] = bool(valid)
        return found

    def __post_init__(self) -> None:
        _seen.setdefault(self.cache_key, _Seen())
        invalidation.register(self.cache_key, lambda _value: self.forget())

    def indexed_tenants(self) -> frozenset[int]:
        """Tenants with a valid index of their own, as this process last saw the catalog."""
        seen = _seen[self.cache_key]
        now = time.monotonic()
        with seen.lock:
            if now - seen.at < float(getattr(settings, self.cache_seconds_setting)):
                return seen.tenants
            generation = seen.generation
        tenants = frozenset(tenant for tenant, valid in self.catalog().items() if valid)
        with seen.lock:
            if generation == seen.generation:
                seen.at, seen.tenants = now, tenants
        return tenants

    def forget(self) -> None:
        """Read the catalog again at the next lookup (after a sync, here or in another process)."""
        seen = _seen[self.cache_key]
        with seen.lock:
            seen.generation += 1
            seen.at = -1e18

    def has_tenant_index(self, tenant_id: int) -> bool:
        return tenant_id in self.indexed_tenants()

    def _tenant_rows(self, floor: int) -> dict[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT tenant_id, count(*) FROM {self.table} GROUP BY tenant_id HAVING count(*) >= %s",  # noqa: S608
                [floor],
            )
            return {int(tenant): int(rows) for tenant, rows in cursor.fetchall()}

    def _build(self, tenant_id: int) -> None:
        name = self.index_name(tenant_id)
        in_transaction = connection.in_atomic_block
        with connection.cursor() as cursor:
            if in_transaction:  # CREATE INDEX refuses to run while deferred FK checks are pending
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            # HNSW builds far faster when the graph fits in maintenance_work_mem. A build takes
            # minutes for a big tenant: the connection's statement_timeout (meant for requests,
            # SLOP_DB_STATEMENT_TIMEOUT) would cancel it every time, leaving it never built.
            cursor.execute(
                "SELECT set_config('maintenance_work_mem', %s, %s), set_config('statement_timeout', '0', %s)",
                [str(getattr(settings, self.build_memory_setting)), in_transaction, in_transaction],
            )
            try:
                # tenant_id is an int: a literal in the predicate, which queries must repeat to use it.
                cursor.execute(
                    f"CREATE INDEX {_concurrently()} {name} ON {self.table}"
                    f" USING hnsw ({self.column} vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
                    f" WHERE tenant_id = {int(tenant_id)}"
                )
            finally:
                if not in_transaction:
                    cursor.execute("RESET maintenance_work_mem; RESET statement_timeout")

    def _drop(self, tenant_id: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX {_concurrently()} IF EXISTS {self.index_name(tenant_id)}")

    def sync(self, *, min_rows: int | None = None) -> SyncReport:
        """Build the missing tenant indexes, drop those no longer needed."""
        threshold = self.min_rows() if min_rows is None else min_rows
        report = SyncReport()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.lock_key])
            if not cursor.fetchone()[0]:
                report.skipped = True
                return report
        try:
            floor = max(threshold // 2, 1)
            rows = self._tenant_rows(floor)
            existing = self.catalog()
            for tenant_id, valid in existing.items():
                keep = rows.get(tenant_id, 0) >= floor
                if not keep or not valid:
                    self._drop(tenant_id)
                    if not keep:
                        report.dropped.append(tenant_id)
            for tenant_id, count in sorted(rows.items(), key=lambda item: -item[1]):
                if count < threshold or existing.get(tenant_id):
                    continue
                started = time.monotonic()
                try:
                    self._build(tenant_id)
                except Exception as error:  # one tenant's failure must not stop the others
                    logger.exception("Building the %s index of tenant %s failed", self.label, tenant_id)
                    report.failed[tenant_id] = str(error)
                    self._drop(tenant_id)
                    continue
                report.built[tenant_id] = time.monotonic() - started
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [self.lock_key])
            invalidation.invalidate(self.cache_key, "")  # here at once, elsewhere when heard
        return report


def _concurrently() -> str:
    # CONCURRENTLY keeps writes going but cannot run inside a transaction; inside one (a caller's
    # atomic block) the plain build is the only one possible.
    return "" if connection.in_atomic_block else "CONCURRENTLY"


def sync_report_summary(report: SyncReport) -> dict[str, object]:
    """What the beat tasks return (for logs)."""
    return {"built": sorted(report.built), "dropped": report.dropped, "failed": sorted(report.failed)}


_pgvector_version: tuple[int, ...] | None = None


def pgvector_version() -> tuple[int, ...]:
    """The installed pgvector's version, read once per process."""
    global _pgvector_version
    if _pgvector_version is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
        text = row[0] if row else "0"
        _pgvector_version = tuple(int(part) for part in text.split(".") if part.isdigit())
    return _pgvector_version


def has_iterative_scan() -> bool:
    """pgvector 0.8+ (`hnsw.iterative_scan`): an index scan goes on until enough rows pass the
    filters; older versions stop at `hnsw.ef_search` rows."""
    return pgvector_version() >= (0, 8)
