"""Embedding a resource's chunks in batches: the background job of a large write, and re-embedding.

A write whose content is longer than RESOURCES_ASYNC_INDEX_CHARS stores the resource and its
chunks without vectors (searchable by words at once: the tsvector is a generated column) and queues
a job of kind `resources.index` (apps/tools/job_kinds.py: the tool-job machinery, its endpoints and
stream). The job, on a Celery worker, embeds the chunks still without a vector, a batch at a time,
and writes each batch's vectors as it goes. It is safe to run twice and to race a newer write:

- it works from the rows, not from a copy of the text: a chunk row never changes its text (a write
  that changes the content replaces the rows), so a vector always belongs to the row it lands on,
  and a run that finds nothing left to embed has nothing to do;
- it clears `Resource.index_job` only if that is still its own job (a newer write has its own);
- between batches it stops when its job is no longer running (cancelled, or failed by the reaper).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import connection

from apps.core.embeddings import embed_texts, embedding_model_id
from apps.core.embeddings.usage import forget_other_models, note_embedded
from apps.core.errors import ApplicationError
from apps.resources.chunking import embedding_input
from apps.resources.models import Resource, ResourceChunk
from apps.tenants.scopes import Action
from apps.tools.job_kinds import JobKind
from apps.tools.models import ToolJob

logger = logging.getLogger("slop.resources")

INDEX_JOB_KIND = "resources.index"


def vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def chunk_rows_embed(*, tenant_id: int, rows: list[tuple[int, str, str]]) -> int:
    """Embed (chunk pk, title, text) rows as one batch and store the vectors; returns rows written
    (fewer when some were replaced or deleted meanwhile)."""
    if not rows:
        return 0
    note_embedded("resources", embedding_model_id())
    vectors = embed_texts([embedding_input(title, text) for _, title, text in rows], tenant_id=tenant_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ResourceChunk._meta.db_table} AS c SET embedding = v.embedding::vector "  # noqa: S608
            "FROM unnest(%s::bigint[], %s::text[]) AS v(id, embedding) "
            "WHERE c.tenant_id = %s AND c.id = v.id",
            [[row[0] for row in rows], [vector_literal(vector) for vector in vectors], tenant_id],
        )
        return int(cursor.rowcount)


def _missing_vectors(*, tenant_id: int, resource_pk: int, batch: int) -> list[tuple[int, str, str]]:
    return list(
        ResourceChunk.objects.for_tenant(tenant_id)
        .filter(
            resource_id=resource_pk,
            embedding__isnull=True,
            position__lt=settings.RESOURCES_MAX_EMBEDDED_CHUNKS,
        )
        .order_by("position")
        .values_list("pk", "title", "text")[:batch]
    )


def _still_running(job: ToolJob) -> bool:
    return (
        ToolJob.objects.for_tenant(job.tenant_id)
        .filter(pk=job.pk, status=ToolJob.Status.RUNNING, attempts=job.attempts)
        .exists()
    )


def resource_chunks_embed(*, tenant_id: int, resource_pk: int, job: ToolJob | None = None) -> int:
    """Embed every chunk of the resource that has no vector yet (up to the per-resource limit), a
    batch at a time; returns how many were embedded. With `job`, stops when it stops running."""
    embedded = 0
    batch = settings.RESOURCES_INDEX_BATCH_CHUNKS
    while rows := _missing_vectors(tenant_id=tenant_id, resource_pk=resource_pk, batch=batch):
        if job is not None and not _still_running(job):
            break
        written = chunk_rows_embed(tenant_id=tenant_id, rows=rows)
        embedded += written
        if written == 0:  # the rows went away under us: read afresh
            continue
    return embedded


def resource_index_job_run(job: ToolJob) -> dict[str, Any]:
    """The body of a `resources.index` job (run by apps/tools/jobs.py on a worker)."""
    resource_pk = int(job.parameters["resource_pk"])
    resource_id = str(job.parameters["resource_id"])
    resource = Resource.objects.for_tenant(job.tenant_id).filter(pk=resource_pk).only("pk").first()
    if resource is None:
        return {"resource": resource_id, "embedded": 0, "deleted": True}
    embedded = resource_chunks_embed(tenant_id=job.tenant_id, resource_pk=resource_pk, job=job)
    if not _still_running(job):
        return {"resource": resource_id, "embedded": embedded, "stopped": True}
    chunks = ResourceChunk.objects.for_tenant(job.tenant_id).filter(resource_id=resource_pk)
    left = chunks.filter(embedding__isnull=True, position__lt=settings.RESOURCES_MAX_EMBEDDED_CHUNKS).count()
    if left:
        raise ApplicationError(
            f"{left} chunk(s) of {resource_id} were not embedded; run the job again", code="incomplete"
        )
    Resource.objects.for_tenant(job.tenant_id).filter(pk=resource_pk, index_job=job).update(index_job=None)
    return {
        "resource": resource_id,
        "chunks": chunks.count(),
        "embedded": embedded,
        "words_only": chunks.filter(position__gte=settings.RESOURCES_MAX_EMBEDDED_CHUNKS).count(),
    }


def _index_job_action(job: ToolJob, permission: str) -> Action:
    # Seeing the job is reading the resource; cancelling it (execute) is writing it.
    return Action(
        "resources", "read" if permission == "read" else "write", str(job.parameters["resource_id"])
    )


INDEX_JOB = JobKind(
    name=INDEX_JOB_KIND,
    run=resource_index_job_run,
    action=_index_job_action,
    crash_message="Internal error while embedding the resource's chunks; it is still found by words",
)


def indexing_state(resource: Resource) -> str:
    """complete (every chunk that gets a vector has one), pending (its job has not finished) or
    failed (its job failed or was cancelled: found by words only until re-embedded)."""
    job = resource.index_job if resource.index_job_id is not None else None
    if job is None or job.status == ToolJob.Status.SUCCEEDED:
        return "complete"
    if job.status in (ToolJob.Status.QUEUED, ToolJob.Status.RUNNING):
        return "pending"
    return "failed"


def resources_reembed(*, tenant_id: int | None, missing_only: bool) -> int:
    """Re-embed resource chunks through the same batches as the jobs: every chunk (after a model
    change), or only those without a vector (after a failed job). Returns chunks written. Every
    tenant's every chunk done, the other models noted for resources are forgotten
    (apps/core/embeddings/usage.py): each vector is the running model's."""
    chunks = (
        ResourceChunk.objects.unscoped() if tenant_id is None else ResourceChunk.objects.for_tenant(tenant_id)
    )
    chunks = chunks.filter(position__lt=settings.RESOURCES_MAX_EMBEDDED_CHUNKS)
    if missing_only:
        chunks = chunks.filter(embedding__isnull=True)
    batch = settings.RESOURCES_INDEX_BATCH_CHUNKS
    written = 0
    last_pk = 0
    while True:
        rows = list(
            chunks.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", "tenant_id", "title", "text")[:batch]
        )
        if not rows:
            break
        last_pk = rows[-1][0]
        by_tenant: dict[int, list[tuple[int, str, str]]] = {}
        for pk, tenant, title, text in rows:
            by_tenant.setdefault(tenant, []).append((pk, title, text))
        for tenant, tenant_rows in by_tenant.items():
            written += chunk_rows_embed(tenant_id=tenant, rows=tenant_rows)
    if tenant_id is None and not missing_only:
        forget_other_models("resources", embedding_model_id())
    # A resource whose job failed (or was cancelled) and that now has every vector is complete.
    resources = Resource.objects.unscoped() if tenant_id is None else Resource.objects.for_tenant(tenant_id)
    finished = resources.filter(index_job__isnull=False).exclude(
        index_job__status__in=[ToolJob.Status.QUEUED, ToolJob.Status.RUNNING]
    )
    for resource in finished.only("pk", "tenant_id"):
        if not _missing_vectors(tenant_id=resource.tenant_id, resource_pk=resource.pk, batch=1):
            resources.filter(pk=resource.pk).update(index_job=None)
    return written
