"""A tenant's key-value memory, with a vector per item for semantic query."""

from __future__ import annotations

from django.db import models
from pgvector.django import HnswIndex, VectorField

from apps.core.embeddings import EMBEDDING_DIMENSIONS
from apps.core.models import TenantOwnedModel, TimestampedModel

KEY_MAX_LENGTH = 512


class MemoryItem(TenantOwnedModel, TimestampedModel):
    """One key and its JSON value. `embedding` is the vector of `embedding_text`, which is built from
    the key and the value together so both carry meaning (`user preference: theme dark, ...`)."""

    key = models.CharField(max_length=KEY_MAX_LENGTH)
    value = models.JSONField()
    embedding_text = models.TextField()
    # sha256 of (model id, embedding_text): equal hashes mean the stored vector is still right.
    content_hash = models.CharField(max_length=64)
    embedding_model = models.CharField(max_length=200)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="memory_item_tenant_key_unique"),
        ]
        indexes = [
            # Prefix filters (`?prefix=`, scope prefixes, filter.key_prefix) are LIKE 'p%' lookups,
            # which only a pattern_ops index can serve under a non-C collation.
            models.Index(
                fields=["tenant", "key"],
                name="memory_item_key_pattern",
                opclasses=["int8_ops", "varchar_pattern_ops"],
            ),
            models.Index(fields=["tenant", "-created_at", "-id"], name="memory_item_tenant_newest"),
            HnswIndex(
                name="memory_item_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return self.key
