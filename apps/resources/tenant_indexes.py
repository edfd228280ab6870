"""A tenant with many resource chunks gets an HNSW index of its own (apps/core/vector_indexes.py).

Built for tenants at or above RESOURCES_TENANT_INDEX_MIN_CHUNKS chunks by the beat task
(apps/resources/tasks.py) and `manage.py resources_indexes`; each process reads the catalog at most
every RESOURCES_TENANT_INDEX_CACHE_SECONDS. apps/resources/search.py ranks by meaning through it.
"""

from __future__ import annotations

from apps.core.vector_indexes import SyncReport, TenantVectorIndexes

CHUNK_INDEXES = TenantVectorIndexes(
    table="resources_resourcechunk",
    index_prefix="chunk_hnsw_t",
    cache_key="resources:tenant-indexes",
    lock_key=0x5107_3E4,
    min_rows_setting="RESOURCES_TENANT_INDEX_MIN_CHUNKS",
    cache_seconds_setting="RESOURCES_TENANT_INDEX_CACHE_SECONDS",
    build_memory_setting="RESOURCES_INDEX_BUILD_MEMORY",
    label="resource chunks",
)


def sync_chunk_indexes(*, min_rows: int | None = None) -> SyncReport:
    """Build the missing resource-chunk tenant indexes, drop those no longer needed."""
    return CHUNK_INDEXES.sync(min_rows=min_rows)
