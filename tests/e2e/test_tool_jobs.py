"""Tool jobs end to end: Daphne + a real Celery worker + real Redis (broker and channel layer).

Seen through GET /tools/jobs/:id and the SSE stream: queued → running → succeeded; cancel; and a
worker killed in the middle of a job (the job is run again by the next worker, never left running).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings

from tests.e2e.conftest import ROOT, LiveServer, database_url_for_subprocess, start_server, stop_server
from tests.tools.webhook_server import WebhookServer, start_webhook_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SECRET = "whsec_e2e-secret-0123456789"


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): a machine that vanished."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def worker_env(redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "REDIS_URL": redis_url,
        "SECRET_KEY": settings.SECRET_KEY,
        "SLOP_DEBUG": "false",
        "SLOP_HTTP_ALLOW_PRIVATE": "true",
        "SLOP_DB_POOL_MAX": "2",
    }


def start_worker(redis_url: str, tmp_dir: Path, name: str) -> Worker:
    log_path = tmp_dir / f"worker-{name}.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "slop_platform",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=worker_env(redis_url),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = Worker(process, log_path)
    deadline = time.monotonic() + 60
    while " ready." not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"the worker did not start:\n{worker.log()}")
        time.sleep(0.2)
    return worker


@pytest.fixture(scope="module")
def jobs_server(
    django_db_setup: None, django_db_blocker: Any, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with django_db_blocker.unblock():
        # Streams re-read jobs only every 60 s here: what they show in time came through Redis.
        server = start_server(
            {
                "REDIS_URL": redis_url,
                "SLOP_HTTP_ALLOW_PRIVATE": "true",
                "SLOP_TOOLS_STREAM_POLL_SECONDS": "60",
            },
            tmp_path_factory.mktemp("jobs-server"),
        )
    yield server
    stop_server(server)


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[Callable[[str], Worker]]:
    started: list[Worker] = []

    def start(name: str) -> Worker:
        worker = start_worker(redis_url, tmp_path, name)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    server = start_webhook_server(SECRET)
    yield server
    server.close()


@pytest.fixture
def api(jobs_server: LiveServer, alice: Any, make_key: Callable[..., str]) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=jobs_server.url, headers={"Authorization": f"Bearer {make_key(alice)}"}, timeout=30
    ) as client:
        yield client


def register_slow_tool(api: httpx.Client, hook: WebhookServer, path: str) -> None:
    response = api.put(
        "/tools/report",
        json={
            "description": "Builds a report (slow)",
            "url": f"{hook.url}{path}",
            "signing_secret": SECRET,
            "long_running": True,
            "timeout_seconds": 60,
            "parameters": {"month": {"type": "string"}},
        },
    )
    assert response.status_code == 201, response.text


def wait_for_status(api: httpx.Client, job_id: str, wanted: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = api.get(f"/tools/jobs/{job_id}").json()
        if body["status"] == wanted:
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} is {body.get('status')}, not {wanted}: {body}")


@dataclass
class StreamReader:
    events: list[dict[str, Any]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    status_code: int = 0
    error: BaseException | None = None

    @property
    def statuses(self) -> list[str]:
        return [event["status"] for event in self.events if event.get("type") == "status"]


def read_stream(url: str, key_header: str) -> StreamReader:
    reader = StreamReader()

    def run() -> None:
        try:
            with httpx.stream("GET", url, headers={"Authorization": key_header}, timeout=60) as response:
                reader.status_code = response.status_code
                for line in response.iter_lines():
                    if line == "data: [DONE]":
                        reader.done.set()
                        return
                    if line.startswith("data: "):
                        reader.events.append(json.loads(line[6:]))
        except BaseException as exc:  # surfaced by the test
            reader.error = exc
        finally:
            reader.done.set()

    threading.Thread(target=run, daemon=True).start()
    return reader


def test_queued_running_succeeded_through_get_and_sse(api, hook, workers, jobs_server) -> None:
    register_slow_tool(api, hook, "/wait-for-release")
    response = api.post("/tools/report", json={"month": "2026-10"})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert response.json()["status"] == "queued"
    assert api.get(f"/tools/jobs/{job_id}").json()["status"] == "queued"  # no worker yet

    stream = read_stream(f"{jobs_server.url}/tools/jobs/{job_id}/stream", api.headers["Authorization"])
    workers("first")
    running = wait_for_status(api, job_id, "running")
    assert running["attempts"] == 1 and running["started_at"]
    assert hook.blocked.wait(10)
    assert hook.received[0].signature_valid
    hook.release.set()
    finished = wait_for_status(api, job_id, "succeeded")
    assert finished["result"] == {"done": True}
    assert finished["finished_at"]

    assert stream.done.wait(15), "the stream did not end"  # well before the 60 s re-read
    assert stream.error is None and stream.status_code == 200
    assert stream.statuses == ["queued", "running", "succeeded"]
    assert stream.events[-1]["result"] == {"done": True}


def test_async_call_of_a_quick_tool(api, workers) -> None:
    workers("quick")
    response = api.post("/tools/calculator?async=true&wait=10", json={"expression": "15 * 7"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "succeeded" and body["result"] == 105


def test_cancel_a_queued_and_a_running_job(api, hook, workers) -> None:
    register_slow_tool(api, hook, "/wait-for-release")
    queued = api.post("/tools/report", json={"month": "2026-09"}).json()["job_id"]
    cancelled = api.delete(f"/tools/jobs/{queued}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    workers("canceller")
    running = api.post("/tools/report", json={"month": "2026-08"}).json()["job_id"]
    wait_for_status(api, running, "running")
    assert api.delete(f"/tools/jobs/{running}").json()["status"] == "cancelled"
    hook.release.set()
    time.sleep(1.5)  # the worker finishes the call; its answer must not overwrite the cancel
    body = api.get(f"/tools/jobs/{running}").json()
    assert body["status"] == "cancelled" and body["result"] is None
    assert api.get(f"/tools/jobs/{queued}").json()["status"] == "cancelled"
    assert hook.block_count == 1  # the job cancelled while queued never reached the webhook
    assert api.delete(f"/tools/jobs/{running}").status_code == 409


def test_a_killed_worker_does_not_leave_the_job_running(api, hook, workers) -> None:
    register_slow_tool(api, hook, "/block-once")
    job_id = api.post("/tools/report", json={"month": "2026-07"}).json()["job_id"]
    doomed = workers("doomed")
    wait_for_status(api, job_id, "running")
    assert hook.blocked.wait(10)
    doomed.kill()
    # The runner's database session died with it, and so did its lock: the next read notices.
    requeued = wait_for_status(api, job_id, "queued", timeout=15)
    assert requeued["attempts"] == 1
    workers("survivor")
    finished = wait_for_status(api, job_id, "succeeded")
    assert finished["attempts"] == 2
    assert finished["result"] == "second time lucky"
    assert hook.block_count == 2


def test_other_teams_cannot_see_or_stream_jobs(api, jobs_server, charlie, make_key) -> None:
    job_id = api.post("/tools/calculator?async=true", json={"expression": "1"}).json()["job_id"]
    headers = {"Authorization": f"Bearer {make_key(charlie)}"}
    with httpx.Client(base_url=jobs_server.url, headers=headers, timeout=10) as other:
        assert other.get(f"/tools/jobs/{job_id}").status_code == 404
        assert other.get(f"/tools/jobs/{job_id}/stream").status_code == 404
        assert other.delete(f"/tools/jobs/{job_id}").status_code == 404


def test_a_killed_pool_process_gets_its_job_redelivered(api, hook, workers) -> None:
    register_slow_tool(api, hook, "/block-once")
    job_id = api.post("/tools/report", json={"month": "2026-06"}).json()["job_id"]
    worker = workers("pool")
    wait_for_status(api, job_id, "running")
    assert hook.blocked.wait(10)
    children = subprocess.run(
        ["pgrep", "-P", str(worker.process.pid)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert children, worker.log()
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    # The main process rejects the message (acks_late + reject_on_worker_lost) so the broker
    # delivers it again, and a read of the job notices the dead attempt too; whichever comes first,
    # the new pool process runs it once more (the other delivery finds it taken or finished).
    finished = wait_for_status(api, job_id, "succeeded")
    assert finished["attempts"] == 2
    assert finished["result"] == "second time lucky"
