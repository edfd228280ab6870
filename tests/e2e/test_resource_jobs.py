"""A large resource end to end: Daphne + a real Celery worker + real Redis.

POST /resources with long content answers 202 at once with a job; the resource is found by words
before any worker runs; the worker embeds its chunks in batches; the job's SSE stream says
queued → running → succeeded; then the resource is complete and found by meaning. Another team
never reaches the job.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.test_tool_jobs import api, jobs_server, read_stream, wait_for_status, workers  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def manual(marker: str) -> str:
    steps = " ".join(
        f"Step {index}: check the pressure valve of pump {index} and write the reading in the log."
        for index in range(150)
    )  # ~13,000 characters: over the default SLOP_RESOURCES_ASYNC_INDEX_CHARS (8,000)
    return f"{steps} Spare parts are ordered from the {marker} warehouse."


def test_a_large_resource_is_a_job_found_by_words_at_once_and_by_meaning_when_done(
    api: httpx.Client,  # noqa: F811
    jobs_server: Any,  # noqa: F811
    workers: Any,  # noqa: F811
    charlie: Any,
    make_key: Any,
) -> None:
    response = api.post(
        "/resources", json={"id": "manuals/pumps", "title": "Pump maintenance", "content": manual("Quimper")}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "created" and body["indexing"] == "pending"
    job_id = body["job_id"]
    assert api.get(f"/tools/jobs/{job_id}").json()["status"] == "queued"  # no worker yet

    # Found by words before any worker ran (the first search loads the model in the server).
    hits = api.get("/resources/search", params={"q": "Quimper"}, timeout=300).json()["results"]
    assert [hit["id"] for hit in hits] == ["manuals/pumps"]
    assert api.get("/resources/manuals/pumps").json()["indexing"] == "pending"

    headers = {"Authorization": f"Bearer {make_key(charlie)}"}
    with httpx.Client(base_url=jobs_server.url, headers=headers, timeout=10) as other:
        assert other.get(f"/tools/jobs/{job_id}").status_code == 404
        assert other.get(f"/tools/jobs/{job_id}/stream").status_code == 404
        assert other.get("/resources/search", params={"q": "Quimper"}).json()["results"] == []

    stream = read_stream(f"{jobs_server.url}{body['stream_url']}", api.headers["Authorization"])
    workers("indexer")
    finished = wait_for_status(api, job_id, "succeeded", timeout=180)
    assert finished["tool"] == "resources.index"
    chunks = finished["result"]["chunks"]
    assert chunks > 10 and finished["result"]["embedded"] == chunks
    assert stream.done.wait(15), "the stream did not end"
    assert stream.error is None and stream.status_code == 200
    assert stream.statuses == ["queued", "running", "succeeded"]

    detail = api.get("/resources/manuals/pumps").json()
    assert detail["indexing"] == "complete" and detail["indexing_job"] is None
    # By meaning now: no word of this query is in the text.
    hits = api.get("/resources/search", params={"q": "servicing a water pump"}).json()["results"]
    assert hits and hits[0]["id"] == "manuals/pumps"
