"""The real ASGI server (Daphne) on a free port, against the test database.

Tests that use it must write through `transactional_db` (committed rows), since the server is
another process with its own connections.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

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
        "SLOP_DB_POOL_MAX": "4",
        # Many tests share one server and one client address; rate limits have their own tests.
        "SLOP_RATE_LIMIT_PER_MINUTE": "0",
        "SLOP_ANON_RATE_LIMIT_PER_MINUTE": "0",
        **(extra_env or {}),
    }
    log_path = tmp_dir / f"server-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "slop_platform.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=60, process=process)
    except RuntimeError:
        process.kill()
        raise RuntimeError(f"the server did not start:\n{log_path.read_text(errors='replace')}") from None
    return LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", port, process, log_path)


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
    """Daphne serving the platform on the embedded defaults (no Redis)."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        server = start_server(None, tmp_path_factory.mktemp("server"))
    yield server
    stop_server(server)
