"""A tenant with many memory items gets an HNSW index of its own (apps/core/vector_indexes.py).

Built for tenants at or above SLOP_MEMORY_TENANT_INDEX_MIN_ROWS items by the beat task
(apps/memory/tasks.py) and `manage.py memory_indexes`; each process reads the catalog at most every
SLOP_MEMORY_TENANT_INDEX_CACHE_SECONDS, and at once after a sync it hears of.
"""

from __future__ import annotations

from apps.core.vector_indexes import SyncReport, TenantVectorIndexes

TABLE = "memory_memoryitem"
INDEX_PREFIX = "memory_item_hnsw_t"

MEMORY_INDEXES = TenantVectorIndexes(
    table=TABLE,
    index_prefix=INDEX_PREFIX,
    cache_key="memory:tenant-indexes",
    lock_key=0x5107_3E3,
    min_rows_setting="SLOP_MEMORY_TENANT_INDEX_MIN_ROWS",
    cache_seconds_setting="SLOP_MEMORY_TENANT_INDEX_CACHE_SECONDS",
    build_memory_setting="SLOP_MEMORY_INDEX_BUILD_MEMORY",
    label="memory",
)
_SYNC_LOCK = MEMORY_INDEXES.lock_key
index_name = MEMORY_INDEXES.index_name
indexed_tenants = MEMORY_INDEXES.indexed_tenants
has_tenant_index = MEMORY_INDEXES.has_tenant_index


def sync_tenant_indexes(*, min_rows: int | None = None) -> SyncReport:
    """Build the missing memory tenant indexes, drop those no longer needed."""
    return MEMORY_INDEXES.sync(min_rows=min_rows)
