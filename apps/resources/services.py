"""Writes to resources. Every write re-chunks and re-embeds what it changed, in the same
transaction as the resource row, so a write that has returned is searchable by the next request.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.embeddings import embed_texts
from apps.core.errors import ApplicationError, NotFound
from apps.resources.chunking import split_into_chunks
from apps.resources.models import Resource, ResourceChunk
from apps.tenants.models import Tenant

DEFAULT_TYPE = "document"


def server_timestamp() -> str:
    """ISO-8601 UTC with milliseconds and `Z`, like the seed's `new Date().toISOString()`."""
    return timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def not_found(resource_id: str) -> NotFound:
    return NotFound(f"Resource not found: {resource_id}")


def embedding_input(title: str, text: str) -> str:
    # The title leads every passage: a chunk deep in a document still says what it is about.
    return f"{title}\n\n{text}" if title else text


def _build_chunks(*, resource: Resource) -> list[ResourceChunk]:
    texts = split_into_chunks(
        resource.content, size=settings.RESOURCES_CHUNK_CHARS, overlap=settings.RESOURCES_CHUNK_OVERLAP
    )
    if not texts:
        texts = [""]  # a resource with a title and no content is still found by its title
    embedded = min(len(texts), settings.RESOURCES_MAX_EMBEDDED_CHUNKS)
    vectors = embed_texts(
        [embedding_input(resource.title, text) for text in texts[:embedded]], tenant_id=resource.tenant_id
    )
    return [
        ResourceChunk(
            tenant_id=resource.tenant_id,
            resource=resource,
            position=position,
            title=resource.title,
            text=text,
            embedding=vectors[position] if position < embedded else None,
        )
        for position, text in enumerate(texts)
    ]


def _replace_chunks(*, resource: Resource) -> int:
    chunks = _build_chunks(resource=resource)
    ResourceChunk.objects.for_tenant(resource.tenant_id).filter(resource=resource).delete()
    ResourceChunk.objects.bulk_create(chunks, batch_size=500)
    return len(chunks)


def resource_create(
    *,
    tenant: Tenant,
    resource_id: str,
    title: str,
    type: str | None = None,
    content: str = "",
    metadata: dict[str, Any] | None = None,
) -> Resource:
    """A new resource (409 when the tenant already has one under this id)."""
    resource = Resource(
        tenant=tenant,
        path=resource_id,
        title=title,
        type=type or DEFAULT_TYPE,
        content=content,
        metadata={**(metadata or {}), "created_at": server_timestamp()},
    )
    try:
        with transaction.atomic():
            if Resource.objects.for_tenant(tenant).filter(path=resource_id).exists():
                raise _conflict(resource_id)
            resource.save()
            _replace_chunks(resource=resource)
    except IntegrityError:  # a concurrent create of the same id won the race
        raise _conflict(resource_id) from None
    return resource


def _conflict(resource_id: str) -> ApplicationError:
    return ApplicationError(
        f"Resource with this ID already exists: {resource_id}", code="conflict", status=409
    )


def resource_update(
    *,
    tenant: Tenant,
    resource_id: str,
    title: str | None = None,
    type: str | None = None,
    content: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Resource:
    """Partial update: given fields replace, metadata is merged, `metadata.updated_at` is set.

    Title or content changes re-chunk and re-embed the resource."""
    with transaction.atomic():
        resource = Resource.objects.for_tenant(tenant).select_for_update().filter(path=resource_id).first()
        if resource is None:
            raise not_found(resource_id)
        reindex = (title is not None and title != resource.title) or (
            content is not None and content != resource.content
        )
        if title is not None:
            resource.title = title
        if type is not None:
            resource.type = type
        if content is not None:
            resource.content = content
        created_at = resource.metadata.get("created_at")
        merged = {**resource.metadata, **(metadata or {}), "updated_at": server_timestamp()}
        if created_at is not None:
            merged["created_at"] = created_at  # set by the server, never by a client
        resource.metadata = merged
        resource.save()
        if reindex:
            _replace_chunks(resource=resource)
    return resource


def resource_delete(*, tenant: Tenant, resource_id: str) -> None:
    deleted, _ = Resource.objects.for_tenant(tenant).filter(path=resource_id).delete()
    if not deleted:
        raise not_found(resource_id)
