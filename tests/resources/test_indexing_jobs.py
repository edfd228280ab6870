"""Large writes answer 202 and are embedded by a background job; small ones stay synchronous.

The jobs run in-process here (eager Celery, as the embedded default without Redis); the same flow
with a real worker, Redis and the SSE stream is tests/e2e/test_resource_jobs.py.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import override_settings

from apps.core import embeddings
from apps.resources.models import Resource, ResourceChunk
from apps.tools.models import ToolJob

pytestmark = pytest.mark.django_db

THRESHOLD = override_settings(RESOURCES_ASYNC_INDEX_CHARS=2_000, RESOURCES_INDEX_BATCH_CHUNKS=3)


def long_text(marker: str) -> str:
    filler = " ".join(
        f"Paragraph {index} describes the maintenance schedule of pumps." for index in range(60)
    )
    return f"{filler} The rare word {marker} appears once, near the end."


def vectors(tenant, resource_id: str) -> list[bool]:
    chunks = ResourceChunk.objects.for_tenant(tenant).filter(resource__path=resource_id).order_by("position")
    return [embedding is not None for embedding in chunks.values_list("embedding", flat=True)]


@THRESHOLD
def test_small_content_is_embedded_in_the_request_and_answers_201(alice_client, alice):
    response = alice_client.post(
        "/resources", {"id": "small", "title": "Small", "content": "Short."}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["indexing"] == "complete"
    assert body["resource"]["indexing"] == "complete"
    assert body["resource"]["indexing_job"] is None
    assert "job_id" not in body
    assert vectors(alice, "small") == [True]


@THRESHOLD
def test_large_content_answers_202_with_a_job_and_is_found_by_words_at_once(alice_client, alice):
    response = alice_client.post(
        "/resources",
        {"id": "manuals/pumps", "title": "Pumps", "content": long_text("zyzzyva")},
        format="json",
    )  # no commit callbacks run: the job stays queued
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "created"
    assert body["indexing"] == "pending"
    assert body["resource"]["indexing"] == "pending"
    assert body["job_id"].startswith("job_")
    assert body["resource"]["indexing_job"] == body["job_id"]
    assert body["status_url"] == f"/tools/jobs/{body['job_id']}"
    assert body["stream_url"] == f"/tools/jobs/{body['job_id']}/stream"
    assert not any(vectors(alice, "manuals/pumps"))
    hits = alice_client.get("/resources/search?q=zyzzyva").json()["results"]
    assert [hit["id"] for hit in hits] == ["manuals/pumps"]
    job = alice_client.get(body["status_url"]).json()
    assert job["status"] == "queued"
    assert job["tool"] == "resources.index"


@THRESHOLD
def test_the_job_embeds_every_chunk_in_batches_and_the_resource_becomes_complete(
    alice_client, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        body = alice_client.post(
            "/resources",
            {"id": "manuals/pumps", "title": "Pumps", "content": long_text("zyzzyva")},
            format="json",
        ).json()
    job = alice_client.get(body["status_url"]).json()
    assert job["status"] == "succeeded", job
    chunks = len(vectors(alice, "manuals/pumps"))
    assert chunks > 3  # more than one batch
    assert job["result"] == {
        "resource": "manuals/pumps",
        "chunks": chunks,
        "embedded": chunks,
        "words_only": 0,
    }
    assert all(vectors(alice, "manuals/pumps"))
    detail = alice_client.get("/resources/manuals/pumps").json()
    assert detail["indexing"] == "complete"
    assert detail["indexing_job"] is None
    hits = alice_client.get("/resources/search?q=how often are the pumps serviced").json()["results"]
    assert hits[0]["id"] == "manuals/pumps"


@THRESHOLD
def test_an_upload_over_the_threshold_is_a_job_too(alice_client, alice, django_capture_on_commit_callbacks):
    upload = io.BytesIO(long_text("quokka").encode())
    upload.name = "pumps.txt"
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post("/resources", {"file": upload}, format="multipart")
    assert response.status_code == 202
    assert alice_client.get(response.json()["status_url"]).json()["status"] == "succeeded"
    assert all(vectors(alice, "pumps.txt"))


@THRESHOLD
def test_an_update_to_large_content_is_a_job_and_a_newer_write_wins(
    alice_client, alice, django_capture_on_commit_callbacks
):
    alice_client.post("/resources", {"id": "doc", "title": "Doc", "content": "Short."}, format="json")
    first = alice_client.put("/resources/doc", {"content": long_text("axolotl")}, format="json")
    assert first.status_code == 202
    # A newer small write replaces the chunks and embeds them itself: the first job finds nothing
    # left to do and does not touch the resource.
    with django_capture_on_commit_callbacks(execute=True):
        second = alice_client.put("/resources/doc", {"content": "Now short again."}, format="json")
    assert second.status_code == 200
    assert second.json()["indexing"] == "complete"
    from apps.resources.indexing import resource_index_job_run

    job = ToolJob.objects.for_tenant(alice).get(public_id=first.json()["job_id"])
    job.status, job.attempts = ToolJob.Status.RUNNING, 1
    job.save()
    assert resource_index_job_run(job)["embedded"] == 0
    assert vectors(alice, "doc") == [True]


@THRESHOLD
def test_a_failed_job_says_why_and_the_resource_stays_found_by_words(
    alice_client, alice, django_capture_on_commit_callbacks
):
    # The embedding provider is down (nothing listens on this port) while the job runs.
    with override_settings(
        SLOP_EMBEDDINGS_PROVIDER="openai",
        SLOP_EMBEDDINGS_BASE_URL="http://127.0.0.1:9/v1",
        SLOP_EMBEDDINGS_TIMEOUT=2,
    ):
        embeddings.reset_provider()
        try:
            with django_capture_on_commit_callbacks(execute=True):
                body = alice_client.post(
                    "/resources",
                    {"id": "doc", "title": "Doc", "content": long_text("pangolin")},
                    format="json",
                ).json()
        finally:
            embeddings.reset_provider()
    job = alice_client.get(body["status_url"]).json()
    assert job["status"] == "failed"
    assert job["error"] and job["error_code"], job
    assert alice_client.get("/resources/doc").json()["indexing"] == "failed"
    hits = alice_client.get("/resources/search?q=pangolin").json()["results"]
    assert [hit["id"] for hit in hits] == ["doc"]
    # Re-embedding what is missing, through the same batches, completes it.
    out = io.StringIO()
    call_command("resources_reembed", "--tenant", alice.slug, "--missing", stdout=out)
    assert "Re-embedded" in out.getvalue()
    assert all(vectors(alice, "doc"))
    assert alice_client.get("/resources/doc").json()["indexing"] == "complete"


@THRESHOLD
def test_a_resource_job_is_reached_with_the_resources_scopes_and_by_no_other_team(
    alice_client, alice, client_for, charlie_client
):
    body = alice_client.post(
        "/resources", {"id": "manuals/pumps", "title": "Pumps", "content": long_text("okapi")}, format="json"
    ).json()
    status_url = body["status_url"]
    assert charlie_client.get(status_url).status_code == 404
    assert charlie_client.delete(status_url).status_code == 404
    assert client_for(alice, "resources.manuals.read").get(status_url).status_code == 200
    assert client_for(alice, "resources.other.read").get(status_url).status_code == 403
    assert client_for(alice, "tools.*").get(status_url).status_code == 403
    # Cancelling is writing the resource.
    assert client_for(alice, "resources.manuals.read").delete(status_url).status_code == 403
    # Tool job lists hold tool jobs only.
    assert alice_client.get("/tools/jobs").json()["jobs"] == []
    cancelled = client_for(alice, "resources.manuals.write").delete(status_url)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert alice_client.get("/resources/manuals/pumps").json()["indexing"] == "failed"


def test_the_reembed_command_recomputes_every_chunk(alice_client, alice):
    alice_client.post("/resources", {"id": "a", "title": "A", "content": "About pumps."}, format="json")
    ResourceChunk.objects.for_tenant(alice).update(embedding=[0.0] * 383 + [1.0])
    out = io.StringIO()
    call_command("resources_reembed", "--all", stdout=out)
    assert "Re-embedded 1 resource chunks" in out.getvalue()
    (vector,) = ResourceChunk.objects.for_tenant(alice).values_list("embedding", flat=True)
    assert list(vector)[-1] != 1.0
    assert Resource.objects.for_tenant(alice).get(path="a").index_job is None
