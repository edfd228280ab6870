"""Writes to resources. Every write re-chunks what it changed in the same transaction as the
resource row, so a write that has returned is searchable by the next request: by words and meaning
when its content is small (embedded in the request), by words at once and by meaning when its
background job ends when the content is longer than RESOURCES_ASYNC_INDEX_CHARS
(apps/resources/indexing.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, F, Func, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.billing.caps import ensure_room
from apps.core.embeddings import embed_texts, embedding_model_id
from apps.core.embeddings.usage import note_embedded
from apps.core.errors import ApplicationError, NotFound
from apps.resources.chunking import embedding_input, split_into_chunks
from apps.resources.indexing import INDEX_JOB_KIND
from apps.resources.models import Resource, ResourceChunk
from apps.tenants.models import Tenant
from apps.tools.jobs import background_job_create

DEFAULT_TYPE = "document"


def server_timestamp() -> str:
    """ISO-8601 UTC with milliseconds and `Z`, like the seed's `new Date().toISOString()`."""
    return timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def not_found(resource_id: str) -> NotFound:
    return NotFound(f"Resource not found: {resource_id}")


def indexes_in_background(content: str) -> bool:
    """Whether a write of this content embeds its chunks in a background job (202)."""
    return len(content) > settings.RESOURCES_ASYNC_INDEX_CHARS


def content_bytes(content: str) -> int:
    """What a resource's content takes against the plan's resource storage: its UTF-8 bytes."""
    return len(content.encode())


def resource_bytes_stored(tenant_id: int) -> int:
    """The tenant's resource storage in use (the billing cap's counter): all content, in bytes."""
    total = Resource.objects.for_tenant(tenant_id).aggregate(
        stored=Coalesce(Sum(Func(F("content"), function="octet_length", output_field=BigIntegerField())), 0)
    )["stored"]
    return int(total)


def _build_chunks(*, resource: Resource, embed: bool) -> list[ResourceChunk]:
    texts = split_into_chunks(
        resource.content, size=settings.RESOURCES_CHUNK_CHARS, overlap=settings.RESOURCES_CHUNK_OVERLAP
    )
    if not texts:
        texts = [""]  # a resource with a title and no content is still found by its title
    embedded = min(len(texts), settings.RESOURCES_MAX_EMBEDDED_CHUNKS) if embed else 0
    if embedded:
        note_embedded("resources", embedding_model_id())
    vectors = (
        embed_texts(
            [embedding_input(resource.title, text) for text in texts[:embedded]], tenant_id=resource.tenant_id
        )
        if embedded
        else []
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


def _replace_chunks(*, resource: Resource, api_key_id: int | None) -> int:
    """New chunks for the resource's content: embedded here, or by a job queued at commit."""
    background = indexes_in_background(resource.content)
    chunks = _build_chunks(resource=resource, embed=not background)
    ResourceChunk.objects.for_tenant(resource.tenant_id).filter(resource=resource).delete()
    ResourceChunk.objects.bulk_create(chunks, batch_size=500)
    job = None
    if background:
        job = background_job_create(
            tenant=resource.tenant_id,
            kind=INDEX_JOB_KIND,
            parameters={"resource_id": resource.path, "resource_pk": resource.pk},
            timeout_seconds=settings.RESOURCES_INDEX_JOB_TIMEOUT,
            api_key_id=api_key_id,
        )
    if job is not None or resource.index_job_id is not None:
        resource.index_job = job
        resource.save(update_fields=["index_job"])
    return len(chunks)


def resource_create(
    *,
    tenant: Tenant,
    resource_id: str,
    title: str,
    type: str | None = None,
    content: str = "",
    metadata: dict[str, Any] | None = None,
    api_key_id: int | None = None,
) -> Resource:
    """A new resource (409 when the tenant already has one under this id). Long content is embedded
    by a background job: `resource.index_job` is then set (queued once this returns)."""
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
            # Billing cap (apps/billing/caps.py): the content's bytes must fit the plan's storage.
            ensure_room(tenant, "resource_bytes", content_bytes(content))
            resource.save()
            _replace_chunks(resource=resource, api_key_id=api_key_id)
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
    api_key_id: int | None = None,
) -> Resource:
    """Partial update: given fields replace, metadata is merged, `metadata.updated_at` is set.

    Title or content changes re-chunk and re-embed the resource (long content: in a background
    job, as resource_create)."""
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
            # Billing cap (apps/billing/caps.py): only growth counts; shrinking is always allowed.
            ensure_room(tenant, "resource_bytes", content_bytes(content) - content_bytes(resource.content))
            resource.content = content
        created_at = resource.metadata.get("created_at")
        merged = {**resource.metadata, **(metadata or {}), "updated_at": server_timestamp()}
        if created_at is not None:
            merged["created_at"] = created_at  # set by the server, never by a client
        resource.metadata = merged
        resource.save()
        if reindex:
            _replace_chunks(resource=resource, api_key_id=api_key_id)
    return resource


def resource_delete(*, tenant: Tenant, resource_id: str) -> None:
    deleted, _ = Resource.objects.for_tenant(tenant).filter(path=resource_id).delete()
    if not deleted:
        raise not_found(resource_id)
