"""Resources: a tenant's documents under hierarchical ids, split into chunks for search.

A `Resource` is what clients read and write. Its content is split into overlapping
`ResourceChunk`s; each chunk carries its own embedding (for meaning) and a generated `tsvector`
(for words), so search can point at the passage that matched, and long documents stay within
PostgreSQL's tsvector limits.
"""

from __future__ import annotations

from collections.abc import Collection

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import VectorField

from apps.core.embeddings import EMBEDDING_DIMENSIONS
from apps.core.models import TenantOwnedModel

SEARCH_CONFIG = "english"


class Resource(TenantOwnedModel):
    """A document under a client-chosen hierarchical id such as `notes/hello`."""

    path = models.CharField(max_length=512, help_text="The resource id clients use, e.g. notes/hello")
    title = models.CharField(max_length=500)
    type = models.CharField(max_length=100, default="document")
    content = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The background job embedding the chunks of a large write (apps/resources/indexing.py); null
    # once it succeeded, or when the write embedded them itself.
    index_job = models.ForeignKey(
        "tools.ToolJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "path"], name="resource_unique_path_per_tenant")
        ]
        indexes = [
            # Prefix filters (`LIKE 'notes/%'`) need pattern ops whatever the database collation is.
            models.Index(
                fields=["tenant", "path"],
                name="resource_path_prefix",
                opclasses=["int8_ops", "varchar_pattern_ops"],
            ),
            models.Index(fields=["tenant", "-created_at"], name="resource_tenant_newest"),
        ]

    def __str__(self) -> str:
        return self.path

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        # Django checks unique constraints through the default manager, which refuses unscoped
        # queries; (tenant, id) uniqueness is checked by the services and enforced by the database.
        super().validate_constraints(exclude={*(exclude or ()), "tenant"})


class ResourceChunk(TenantOwnedModel):
    """A passage of a resource's content (the title leads every chunk) with its embedding."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    title = models.CharField(max_length=500)
    text = models.TextField()
    # Null when the resource has more chunks than SLOP_RESOURCES_MAX_EMBEDDED_CHUNKS (those
    # passages are still found by words), and until the background job of a large write has
    # embedded it.
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("title", weight="A", config=SEARCH_CONFIG)
        + SearchVector("text", weight="B", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "resource", "position"], name="chunk_unique_position")
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="chunk_search_vector"),
            # No HNSW index over every tenant's chunks: big tenants get one of their own
            # (apps/resources/tenant_indexes.py), the others are ranked exactly, and a shared one
            # cost every chunk write an HNSW insert for the sake of neither.
        ]

    def __str__(self) -> str:
        return f"{self.resource_id}#{self.position}"
