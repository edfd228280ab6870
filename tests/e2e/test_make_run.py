"""`make run` as a user meets it: `manage.py serve` on a fresh data folder with the Makefile's
environment, nothing else (its own PostgreSQL, Redis, Celery worker and beat, the web server).

- a tool called with ?async=true answers 202 queued at once and the job runs on the worker:
  queued → running → succeeded through GET and the SSE stream; a running job can be cancelled;
- the README's operator commands work beside it, as written (no SECRET_KEY, no SLOP_DEBUG);
- Ctrl-C stops every process, and a second run reuses the data.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.core.test_startup import shell_env
from tests.e2e.conftest import ROOT
from tests.e2e.test_tool_jobs import read_stream, wait_for_status
from tests.tools.webhook_server import WebhookServer, start_webhook_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SECRET = "whsec_make-run-secret-0123456789"


@dataclass
class MakeRun:
    process: subprocess.Popen[bytes]
    data_dir: Path
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        found = re.findall(
            r"^(Redis: embedded .*?pid|Celery worker: pid|Celery beat: pid|Web server: pid) (\d+)",
            self.log(),
            re.M,
        )
        return {name.split(":")[0]: int(pid) for name, pid in found}

    def stop(self) -> int:
        """Ctrl-C, as a terminal sends it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise


def start_make_run(data_dir: Path, log_path: Path, **extra: str) -> MakeRun:
    port = free_port()
    # What the Makefile's `run` target does, from an operator's shell.
    env = shell_env(data_dir, SLOP_DEBUG="true", PORT=str(port), **extra)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    run = MakeRun(process, data_dir, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 240  # initdb, migrations, the model and a worker on a busy machine
    while "Serving on" not in run.log():
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.stop()
            raise RuntimeError(f"make run did not start:\n{run.log()}")
        time.sleep(0.3)
    return run


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRun]:
    folder = tmp_path_factory.mktemp("make-run")
    run = start_make_run(folder / "data", folder / "serve.log", SLOP_EMBEDDINGS_PRELOAD="true")
    yield run
    run.stop()


@pytest.fixture(scope="module")
def api(make_run: MakeRun) -> Iterator[httpx.Client]:
    key = (make_run.data_dir / "demo_api_key").read_text().strip()
    with httpx.Client(
        base_url=make_run.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    server = start_webhook_server(SECRET)
    yield server
    server.close()


def register_webhook(api: httpx.Client, hook: WebhookServer) -> None:
    response = api.put(
        "/tools/weather",
        json={
            "url": f"{hook.url}/wait-for-release",
            "signing_secret": SECRET,
            "parameters": {"location": "string"},
            "timeout_seconds": 30,
        },
    )
    assert response.status_code in (200, 201), response.text


def test_each_component_says_it_started(make_run: MakeRun) -> None:
    log = make_run.log()
    for line in (
        "PostgreSQL: embedded (pgserver)",
        "Redis: embedded (redis-server",
        "Celery worker: pid",
        "Celery beat: pid",
        "Web server: pid",
        "Loading the embedding model…",
        "Embedding model ready in",
        f"Serving on {make_run.url}",
    ):
        assert line in log, log
    assert set(make_run.pids()) == {"Redis", "Celery worker", "Celery beat", "Web server"}


def test_an_async_call_is_queued_and_runs_on_the_worker(
    api: httpx.Client, hook: WebhookServer, make_run
) -> None:
    register_webhook(api, hook)

    # The webhook answers only when released: an in-process (eager) run would hold this request.
    response = api.post("/tools/weather?async=true", json={"location": "Oslo"})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    job_id = response.json()["job_id"]
    stream = read_stream(f"{make_run.url}/tools/jobs/{job_id}/stream", api.headers["Authorization"])

    assert hook.blocked.wait(30), make_run.log()
    running = wait_for_status(api, job_id, "running")
    assert running["attempts"] == 1 and running["started_at"]
    # The stream has answered (its first event: the job's status when it connected) before the job
    # may finish, so what follows must reach it through the channel layer. A web worker still
    # warming up can take a second to answer its first stream, which once let the job finish first.
    deadline = time.monotonic() + 30
    while not stream.events and stream.error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stream.events, stream.error or make_run.log()
    hook.release.set()
    finished = wait_for_status(api, job_id, "succeeded")
    assert finished["result"] == {"done": True}
    # The worker's events reach the web server's stream through the shared Redis channel layer.
    assert stream.done.wait(15) and stream.error is None and stream.status_code == 200
    assert stream.statuses[-1] == "succeeded" and "running" in stream.statuses


def test_a_running_job_can_be_cancelled(api: httpx.Client, hook: WebhookServer) -> None:
    register_webhook(api, hook)
    job_id = api.post("/tools/weather?async=true", json={"location": "Bergen"}).json()["job_id"]
    assert hook.blocked.wait(30)
    wait_for_status(api, job_id, "running")

    cancelled = api.delete(f"/tools/jobs/{job_id}")
    hook.release.set()

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    time.sleep(1)  # the worker's late answer must not overwrite the cancel
    assert api.get(f"/tools/jobs/{job_id}").json()["status"] == "cancelled"
    assert api.delete(f"/tools/jobs/{job_id}").status_code == 409


def operator(make_run: MakeRun, *arguments: str) -> str:
    """`.venv/bin/python manage.py …` from a shell beside make run: no SECRET_KEY, no SLOP_DEBUG."""
    result = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=shell_env(make_run.data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{arguments}: {result.stderr}"
    return result.stdout.strip()


def test_the_readme_operator_commands_work_beside_it(make_run: MakeRun) -> None:
    assert operator(make_run, "create_tenant", "Acme Robotics") == "acme-robotics"
    key = operator(
        make_run, "create_api_key", "acme-robotics", "--scopes", "chat.*,memory.user.*,tools.safe.*",
        "--name", "ci", "--expires-in-days", "90",
    )  # fmt: skip
    info = httpx.get(f"{make_run.url}/info", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert info.status_code == 200 and "acme-robotics" in info.text

    prefix = key.split("_")[2]
    assert operator(make_run, "revoke_api_key", prefix).startswith(f"revoked {prefix}")
    assert "Tenant indexes" in operator(make_run, "memory_indexes")
    assert operator(make_run, "reembed", "--all").startswith("Re-embedded")
    assert "payment(s) checked" in operator(make_run, "pay_reconcile")

    deadline = time.monotonic() + 15  # revocation reaches every process within SLOP_KEY_CACHE_SECONDS
    while time.monotonic() < deadline:
        refused = httpx.get(f"{make_run.url}/info", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        if refused.status_code == 401:
            break
        time.sleep(0.5)
    assert refused.status_code == 401


def test_a_killed_database_is_started_again_and_the_platform_recovers(
    make_run: MakeRun, api: httpx.Client
) -> None:
    pid_file = make_run.data_dir / "postgres" / "postmaster.pid"
    killed = int(pid_file.read_text().split()[0])
    os.kill(killed, signal.SIGKILL)

    deadline = time.monotonic() + 60
    while "PostgreSQL: embedded, started again" not in make_run.log():
        assert time.monotonic() < deadline and make_run.process.poll() is None, make_run.log()
        time.sleep(0.2)
    assert int(pid_file.read_text().split()[0]) != killed
    # Without restarting make run: the pools drop their broken connections on the next requests,
    # then every request is served again, writes included (durable across the restart).
    deadline, served = time.monotonic() + 30, 0
    while served < 10:
        assert time.monotonic() < deadline, make_run.log()
        written = api.post("/memory", json={"key": "after-restart", "value": {"n": served}})
        served = served + 1 if written.status_code == 200 else 0
    assert api.get("/memory/after-restart").json()["value"] == {"n": 9}


def test_ctrl_c_stops_everything_and_a_second_run_reuses_the_data(make_run: MakeRun) -> None:
    pids = make_run.pids()
    key = (make_run.data_dir / "demo_api_key").read_text()

    assert make_run.stop() == 0
    assert "Stopped." in make_run.log()
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # each child is gone (reaped by serve), not just asked to stop
    assert not (make_run.data_dir / "postgres" / "postmaster.pid").exists(), "PostgreSQL still runs"

    again = start_make_run(
        make_run.data_dir, make_run.log_path.with_name("second.log"), SLOP_EMBEDDINGS_PRELOAD="false"
    )
    try:
        assert "Demo tenant 'demo'; API key in" in again.log()
        response = httpx.get(
            f"{again.url}/info", headers={"Authorization": f"Bearer {key.strip()}"}, timeout=10
        )
        assert response.status_code == 200
    finally:
        assert again.stop() == 0
