"""The real web server (slop_platform.web: granian, as `make run` runs it) on a free port, against
the test database.

Tests that use it must write through `transactional_db` (committed rows), since the server is
another process with its own connections.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from slop_platform.healthcheck import answers
from tests.conftest import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LiveServer:
    url: str
    ws_url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def database_url_for_subprocess() -> str:
    connection.ensure_connection()
    params = connection.settings_dict
    host = params["HOST"]
    port = f":{params['PORT']}" if params.get("PORT") and not str(host).startswith("/") else ""
    password = f":{quote(params['PASSWORD'], safe='')}" if params.get("PASSWORD") else ""
    user = quote(params["USER"] or "postgres", safe="")
    return f"postgresql://{user}{password}@{quote(str(host), safe='')}{port}/{params['NAME']}"


def start_server(extra_env: dict[str, str] | None, tmp_dir: Path) -> LiveServer:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "SECRET_KEY": settings.SECRET_KEY,
        "SLOP_DEBUG": "false",
        "ALLOWED_HOSTS": "*",
        "SLOP_DB_POOL_MAX": "8",
        "SLOP_WEB_WORKERS": "1",
        "SLOP_WEB_THREADS": "4",
        # Many tests share one server and one client address; rate limits have their own tests.
        "SLOP_RATE_LIMIT_PER_MINUTE": "0",
        "SLOP_ANON_RATE_LIMIT_PER_MINUTE": "0",
        **(extra_env or {}),
    }
    log_path = tmp_dir / f"server-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        # One worker process: without Redis the channel layer and the stream runs live in it.
        [sys.executable, "-m", "slop_platform.web", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=60, process=process)
        wait_for_application(port, timeout=120, process=process)
    except RuntimeError:
        process.kill()
        raise RuntimeError(f"the server did not start:\n{log_path.read_text(errors='replace')}") from None
    return LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", port, process, log_path)


def wait_for_application(port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Until a worker has loaded the application (the port is bound before)."""
    deadline = time.monotonic() + timeout
    while not answers("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the application did not answer on port {port}")
        time.sleep(0.2)


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def slop_server(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The web server serving the platform on the embedded defaults (no Redis)."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        server = start_server(None, tmp_path_factory.mktemp("server"))
    yield server
    stop_server(server)
