"""Build (and drop) the HNSW indexes big memory tenants get of their own, now rather than at the
next beat run: after a bulk import, say."""

from __future__ import annotations

from apps.core.management.vector_index_command import VectorIndexCommand
from apps.memory.tenant_indexes import MEMORY_INDEXES


class Command(VectorIndexCommand):
    help = "Give every tenant with at least --min-rows memory items an HNSW index of its own."
    indexes = MEMORY_INDEXES
