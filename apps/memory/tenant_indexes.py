"""A tenant with many items gets an HNSW index of its own.

The shared index covers every tenant, and pgvector filters after the index scan: a tenant owning
10 % of the table needs a scan of ~k / 0.1 x over-fetch rows of everyone's to fill its top k, which
is slow and still misses some. A partial index `WHERE tenant_id = N` holds only that tenant's rows,
so a scan with a small `ef_search` is fast and close to exact.

They are kept in step with the data by `sync_tenant_indexes()` (Celery beat and
`manage.py memory_indexes`): built CONCURRENTLY (writes go on) for tenants at or above
SLOP_MEMORY_TENANT_INDEX_MIN_ROWS items, dropped when a tenant shrinks below half of that or is
gone, and rebuilt when a concurrent build failed and left an invalid index. The catalog is the
registry; each process reads it at most every SLOP_MEMORY_TENANT_INDEX_CACHE_SECONDS.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import connection

logger = logging.getLogger(__name__)

TABLE = "memory_memoryitem"
INDEX_PREFIX = "memory_item_hnsw_t"
_NAME = re.compile(rf"^{INDEX_PREFIX}(\d+)$")
_CACHE_KEY = "memory:tenant-indexes"
# Any constant unique to this job: one sync at a time across every process.
_SYNC_LOCK = 0x5107_3E3


def index_name(tenant_id: int) -> str:
    return f"{INDEX_PREFIX}{int(tenant_id)}"


def _catalog() -> dict[int, bool]:
    """Tenant id -> whether its index is valid (a failed CONCURRENTLY build leaves it invalid)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = %s::regclass AND c.relname LIKE %s",
            [TABLE, INDEX_PREFIX.replace("_", "\\_") + "%"],
        )
        rows = cursor.fetchall()
    found = {}
    for name, valid in rows:
        match = _NAME.match(name)
        if match:
            found[int(match.group(1))] = bool(valid)
    return found


def indexed_tenants() -> frozenset[int]:
    """Tenants with a valid index of their own, as this process last saw the catalog."""
    tenants = cache.get(_CACHE_KEY)
    if tenants is None:
        tenants = [tenant for tenant, valid in _catalog().items() if valid]
        cache.set(_CACHE_KEY, tenants, settings.SLOP_MEMORY_TENANT_INDEX_CACHE_SECONDS)
    return frozenset(tenants)


def has_tenant_index(tenant_id: int) -> bool:
    return tenant_id in indexed_tenants()


@dataclass
class SyncReport:
    built: dict[int, float] = field(default_factory=dict)  # tenant id -> seconds
    dropped: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    skipped: bool = False  # another sync holds the lock


def _tenant_rows(floor: int) -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tenant_id, count(*) FROM {TABLE} GROUP BY tenant_id HAVING count(*) >= %s",  # noqa: S608
            [floor],
        )
        return {int(tenant): int(rows) for tenant, rows in cursor.fetchall()}


def _concurrently() -> str:
    # CONCURRENTLY keeps writes going but cannot run inside a transaction; inside one (a caller's
    # atomic block) the plain build is the only one possible.
    return "" if connection.in_atomic_block else "CONCURRENTLY"


def _build(tenant_id: int) -> None:
    name = index_name(tenant_id)
    in_transaction = connection.in_atomic_block
    with connection.cursor() as cursor:
        if in_transaction:  # CREATE INDEX refuses to run while deferred FK checks are pending
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # HNSW builds far faster when the graph fits in maintenance_work_mem.
        cursor.execute(
            "SELECT set_config('maintenance_work_mem', %s, %s)",
            [settings.SLOP_MEMORY_INDEX_BUILD_MEMORY, in_transaction],
        )
        try:
            # tenant_id is an int: a literal in the predicate, which queries must repeat to use it.
            cursor.execute(
                f"CREATE INDEX {_concurrently()} {name} ON {TABLE}"
                f" USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
                f" WHERE tenant_id = {int(tenant_id)}"
            )
        finally:
            if not in_transaction:
                cursor.execute("RESET maintenance_work_mem")


def _drop(tenant_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {_concurrently()} IF EXISTS {index_name(tenant_id)}")


def sync_tenant_indexes(*, min_rows: int | None = None) -> SyncReport:
    """Build the missing tenant indexes, drop those no longer needed."""
    threshold = settings.SLOP_MEMORY_TENANT_INDEX_MIN_ROWS if min_rows is None else min_rows
    report = SyncReport()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_SYNC_LOCK])
        if not cursor.fetchone()[0]:
            report.skipped = True
            return report
    try:
        rows = _tenant_rows(max(threshold // 2, 1))
        existing = _catalog()
        for tenant_id, valid in existing.items():
            keep = rows.get(tenant_id, 0) >= max(threshold // 2, 1)
            if not keep or not valid:
                _drop(tenant_id)
                if not keep:
                    report.dropped.append(tenant_id)
        for tenant_id, count in sorted(rows.items(), key=lambda item: -item[1]):
            if count < threshold or existing.get(tenant_id):
                continue
            started = time.monotonic()
            try:
                _build(tenant_id)
            except Exception as error:  # one tenant's failure must not stop the others
                logger.exception("Building the memory index of tenant %s failed", tenant_id)
                report.failed[tenant_id] = str(error)
                _drop(tenant_id)
                continue
            report.built[tenant_id] = time.monotonic() - started
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_SYNC_LOCK])
        cache.delete(_CACHE_KEY)
    return report
