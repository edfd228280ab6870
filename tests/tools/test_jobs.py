"""Tool jobs without a worker process: idempotent runs, dead and hung runners, cancel, the reaper,
the job endpoints' scopes, tenants and bad input. (tests/e2e/test_tool_jobs.py runs a real worker.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings
from django.utils import timezone

from apps.tools.jobs import tool_job_run
from apps.tools.models import ToolJob
from apps.tools.tasks import reap_stale_jobs
from tests.e2e.conftest import database_url_for_subprocess

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_job(alice, alice_client) -> Any:
    def make(tenant: Any = None, expression: str = "6*7", **fields: Any) -> ToolJob:
        job = ToolJob.objects.create(
            tenant=tenant or alice,
            public_id=f"job_TEST{ToolJob.objects.unscoped().count():04d}",
            tool_slug="calculator",
            parameters={"expression": expression},
            timeout_seconds=10,
            enqueued_at=timezone.now(),
            **fields,
        )
        return job

    return make


@pytest.fixture
def other_session() -> Iterator[psycopg.Connection[Any]]:
    """Another PostgreSQL session: a runner in some other process."""
    with psycopg.connect(database_url_for_subprocess(), autocommit=True) as conn:
        yield conn


def hold_runner_lock(conn: psycopg.Connection[Any], job: ToolJob) -> None:
    conn.execute("SELECT pg_advisory_lock(7001, %s)", [job.pk & 0x7FFFFFFF])


def test_a_job_runs_once_even_when_delivered_twice(make_job, alice) -> None:
    job = make_job()
    assert tool_job_run(tenant_id=alice.pk, job_id=job.public_id) == "succeeded"
    assert tool_job_run(tenant_id=alice.pk, job_id=job.public_id) == "finished"
    job.refresh_from_db()
    assert (job.status, job.result, job.attempts) == ("succeeded", 42, 1)


def test_a_delivery_leaves_a_job_another_runner_holds(make_job, alice, other_session) -> None:
    job = make_job()
    hold_runner_lock(other_session, job)
    assert tool_job_run(tenant_id=alice.pk, job_id=job.public_id) == "busy"
    job.refresh_from_db()
    assert job.status == "queued"


def test_a_job_of_another_tenant_is_not_run(make_job, alice, charlie) -> None:
    job = make_job()
    assert tool_job_run(tenant_id=charlie.pk, job_id=job.public_id) == "missing"


def test_a_failing_tool_fails_the_job(make_job, alice) -> None:
    job = make_job(expression="1/0")
    assert tool_job_run(tenant_id=alice.pk, job_id=job.public_id) == "failed"
    job.refresh_from_db()
    assert job.error == "Cannot calculate: Division by zero"
    assert job.error_code == "validation_error"


def test_a_dead_runner_is_noticed_and_the_job_runs_again(
    make_job, alice_client, django_capture_on_commit_callbacks
) -> None:
    job = make_job(status="running", attempts=1, started_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        body = alice_client.get(f"/tools/jobs/{job.public_id}").json()
    assert body["status"] == "queued"  # seen as dead: nobody holds its lock
    job.refresh_from_db()
    assert (job.status, job.attempts, job.result) == ("succeeded", 2, 42)


def test_a_job_whose_runners_keep_dying_fails(make_job, alice_client) -> None:
    job = make_job(status="running", attempts=3, started_at=timezone.now())
    body = alice_client.get(f"/tools/jobs/{job.public_id}").json()
    assert body["status"] == "failed"
    assert body["error_code"] == "worker_lost"
    assert body["finished_at"] is not None


def test_a_live_runner_is_left_alone_until_its_deadline(make_job, alice_client, other_session) -> None:
    job = make_job(status="running", attempts=1, started_at=timezone.now())
    hold_runner_lock(other_session, job)
    assert alice_client.get(f"/tools/jobs/{job.public_id}").json()["status"] == "running"
    ToolJob.objects.for_tenant(job.tenant).filter(pk=job.pk).update(
        started_at=timezone.now() - timedelta(hours=1)
    )
    body = alice_client.get(f"/tools/jobs/{job.public_id}").json()
    assert body["status"] == "failed"
    assert body["error_code"] == "timeout"


def test_an_undelivered_job_is_sent_again(make_job, alice_client, django_capture_on_commit_callbacks) -> None:
    job = make_job()
    ToolJob.objects.for_tenant(job.tenant).filter(pk=job.pk).update(
        enqueued_at=timezone.now() - timedelta(hours=1)
    )
    body = alice_client.get(f"/tools/jobs/{job.public_id}").json()
    assert body["status"] == "succeeded"  # eager here: sending it again ran it
    assert body["result"] == 42


def test_the_reaper_sweeps_every_tenant(make_job, alice, charlie) -> None:
    dead = [
        make_job(tenant=tenant, status="running", attempts=3, started_at=timezone.now())
        for tenant in (alice, charlie)
    ]
    ToolJob.objects.unscoped().update(created_at=timezone.now() - timedelta(minutes=1))
    assert reap_stale_jobs() == 2
    for job in dead:
        job.refresh_from_db()
        assert job.status == "failed"


def test_cancel(make_job, alice, alice_client) -> None:
    job = make_job()
    response = alice_client.delete(f"/tools/jobs/{job.public_id}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert tool_job_run(tenant_id=alice.pk, job_id=job.public_id) == "finished"
    job.refresh_from_db()
    assert job.status == "cancelled" and job.result is None
    again = alice_client.delete(f"/tools/jobs/{job.public_id}")
    assert again.status_code == 409
    assert again.json()["error"] == f"Job {job.public_id} is already cancelled; it cannot be cancelled"


def test_a_cancelled_running_job_keeps_its_status(make_job, alice, alice_client, other_session) -> None:
    job = make_job(status="running", attempts=1, started_at=timezone.now())
    hold_runner_lock(other_session, job)
    assert alice_client.delete(f"/tools/jobs/{job.public_id}").json()["status"] == "cancelled"
    other_session.execute("SELECT pg_advisory_unlock_all()")
    assert tool_job_run(tenant_id=alice.pk, job_id=job.public_id) == "finished"


def test_jobs_of_another_team_are_404(make_job, charlie_client) -> None:
    job = make_job()
    for method in ("get", "delete"):
        response = getattr(charlie_client, method)(f"/tools/jobs/{job.public_id}")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert charlie_client.get(f"/tools/jobs/{job.public_id}/stream").status_code == 404
    job.refresh_from_db()
    assert job.status == "queued"


@pytest.mark.parametrize("job_id", ["job_nope", "nonsense", "x" * 300])
def test_unknown_job_ids_are_404(alice_client, job_id: str) -> None:
    assert alice_client.get(f"/tools/jobs/{job_id}").status_code == 404
    assert alice_client.delete(f"/tools/jobs/{job_id}").status_code == 404
    assert alice_client.get(f"/tools/jobs/{job_id}/stream").status_code == 404


def test_a_job_id_with_a_nul_is_a_400_naming_it(alice_client) -> None:
    for response in (
        alice_client.get("/tools/jobs/%00"),
        alice_client.delete("/tools/jobs/%00"),
        alice_client.get("/tools/jobs/%00/stream"),
    ):
        assert response.status_code == 400
        assert "job_id" in response.json()["details"]


def test_job_scopes(make_job, client_for, alice) -> None:
    job = make_job()
    other = client_for(alice, "tools.weather.*")
    response = other.get(f"/tools/jobs/{job.public_id}")
    assert response.status_code == 403
    assert response.json()["required_scope"] == "tools.calculator.read"
    assert other.delete(f"/tools/jobs/{job.public_id}").status_code == 403
    reader = client_for(alice, "tools.calculator.read")
    assert reader.get(f"/tools/jobs/{job.public_id}").status_code == 200
    assert (
        reader.delete(f"/tools/jobs/{job.public_id}").json()["required_scope"] == "tools.calculator.execute"
    )
    assert client_for(alice, "tools.safe.*").delete(f"/tools/jobs/{job.public_id}").status_code == 200


def test_job_stream_of_a_finished_job(make_job, alice, alice_client) -> None:
    job = make_job()
    tool_job_run(tenant_id=alice.pk, job_id=job.public_id)
    response = alice_client.get(f"/tools/jobs/{job.public_id}/stream")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    # async_to_sync runs the stream's database reads back on this thread (the test's transaction).
    text = async_to_sync(collect)().decode()
    assert text.startswith("id: 1\ndata: {")
    assert '"status": "succeeded"' in text and '"result": 42' in text
    assert text.endswith("data: [DONE]\n\n")


def test_job_stream_needs_a_key(make_job, client) -> None:
    job = make_job()
    response = client.get(f"/tools/jobs/{job.public_id}/stream")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_job_stream_only_answers_get(make_job, alice_client) -> None:
    job = make_job()
    assert alice_client.post(f"/tools/jobs/{job.public_id}/stream").status_code == 405


@override_settings(TOOLS_JOB_MAX_ATTEMPTS=1)
def test_a_redelivery_after_the_last_attempt_fails_the_job(make_job, alice) -> None:
    job = make_job(status="running", attempts=1, started_at=timezone.now())
    assert tool_job_run(tenant_id=alice.pk, job_id=job.public_id) == "failed"
    job.refresh_from_db()
    assert job.error_code == "worker_lost"


def test_job_list(make_job, alice, charlie, alice_client, charlie_client, client_for) -> None:
    first = make_job()
    second = make_job(status="failed")
    charlies = make_job(tenant=charlie)
    ids = lambda client, query="": [job["job_id"] for job in client.get(f"/tools/jobs{query}").json()["jobs"]]  # noqa: E731
    assert ids(alice_client) == [second.public_id, first.public_id]  # newest first
    assert alice_client.get("/tools/jobs").json()["next_cursor"] is None
    page = alice_client.get("/tools/jobs?limit=1").json()
    assert [job["job_id"] for job in page["jobs"]] == [second.public_id]
    assert ids(alice_client, f"?limit=1&cursor={page['next_cursor']}") == [first.public_id]
    assert ids(alice_client, "?status=failed") == [second.public_id]
    assert ids(alice_client, "?tool=weather") == []
    assert ids(charlie_client) == [charlies.public_id]
    # Only jobs of tools the caller may read or execute.
    assert ids(client_for(alice, "tools.list,tools.weather.*")) == []
    assert ids(client_for(alice, "tools.list,tools.safe.*")) == [second.public_id, first.public_id]
    assert client_for(alice, "tools.calculator.*").get("/tools/jobs").status_code == 403


@pytest.mark.parametrize("query", ["status=done", "limit=0", "cursor=zzz", "tool=" + "x" * 65])
def test_job_list_bad_query(alice_client, query: str) -> None:
    response = alice_client.get(f"/tools/jobs?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
