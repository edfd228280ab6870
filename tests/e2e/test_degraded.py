"""Degraded, not down: the real server while its Redis is killed or paused and its PostgreSQL frozen.

The server gets a Redis of its own (a real redis-server this module starts, kills, stops with
SIGSTOP and restarts) and reaches the test database through a TCP proxy that can be frozen with
SIGSTOP, as a paused database server would be. Timeouts are set short, and every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import redis
from django.db import connection

from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create
from slop_platform.embedded_redis import redis_server_binary
from tests.conftest import free_port, wait_for_port
from tests.e2e.conftest import ROOT, LiveServer, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

THREAD = "/chat/thread_faults"
FAULT_ENV = {
    "SLOP_REDIS_SOCKET_TIMEOUT": "1",
    "SLOP_REDIS_CONNECT_TIMEOUT": "1",
    "SLOP_REDIS_RETRY_AFTER_SECONDS": "2",
    "SLOP_DB_CONNECT_TIMEOUT": "2",
    "SLOP_DB_POOL_TIMEOUT": "2",
    "SLOP_DB_STATEMENT_TIMEOUT": "2",
    "SLOP_READYZ_TIMEOUT": "1.5",
    "SLOP_KEY_CACHE_SECONDS": "0",  # every request authenticates against the database
    "SLOP_RATE_LIMIT_PER_MINUTE": "100000",  # on, so each request counts in Redis
}


@dataclass
class OwnRedis:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or str(redis_server_binary())
        options = ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, process=self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class Rig:
    server: LiveServer
    redis: OwnRedis
    proxy: subprocess.Popen[bytes]
    key: str

    def get(self, path: str, *, key: bool = True, timeout: float = 30) -> tuple[httpx.Response, float]:
        headers = {"Authorization": f"Bearer {self.key}"} if key else {}
        started = time.monotonic()
        response = httpx.get(f"{self.server.url}{path}", headers=headers, timeout=timeout)
        return response, time.monotonic() - started


def _pg_target() -> tuple[str, str]:
    """Where the proxy forwards to (a Unix socket path or host:port), and the URL's tail."""
    connection.ensure_connection()
    params = connection.settings_dict
    host, port = str(params["HOST"]), str(params.get("PORT") or "5432")
    target = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else f"{host}:{port}"
    user = quote(params["USER"] or "postgres", safe="")
    password = f":{quote(params['PASSWORD'], safe='')}" if params.get("PASSWORD") else ""
    return target, f"{user}{password}@127.0.0.1:{{port}}/{params['NAME']}"


@pytest.fixture(scope="module")
def rig_parts(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, OwnRedis, subprocess.Popen[bytes]]]:
    own_redis = OwnRedis(port=free_port(), workdir=tmp_path_factory.mktemp("fault-redis"))
    own_redis.start()
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        target, url_tail = _pg_target()
    proxy_port = free_port()
    proxy = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "e2e" / "tcp_proxy.py"), str(proxy_port), target],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = None
    try:
        wait_for_port(proxy_port, process=proxy)
        env = {
            **FAULT_ENV,
            "REDIS_URL": own_redis.url,
            "DATABASE_URL": "postgresql://" + url_tail.format(port=proxy_port),
        }
        with django_db_blocker.unblock():  # type: ignore[attr-defined]
            server = start_server(env, tmp_path_factory.mktemp("fault-server"))
        yield server, own_redis, proxy
    finally:
        if server is not None:
            stop_server(server)
        os.kill(proxy.pid, signal.SIGCONT)
        proxy.terminate()
        proxy.wait(timeout=10)
        own_redis.stop()


@pytest.fixture
def rig(rig_parts: tuple[LiveServer, OwnRedis, subprocess.Popen[bytes]]) -> Iterator[Rig]:
    server, own_redis, proxy = rig_parts
    tenant = Tenant.objects.create(slug="faults", name="Faults")
    rig = Rig(server, own_redis, proxy, api_key_create(tenant=tenant, scopes="*").plaintext)
    # A thread (echo model): database only, no embedding model to load.
    stored = httpx.post(
        f"{server.url}/chat",
        json={"messages": [{"content": "kept"}], "thread_id": "thread_faults"},
        headers={"Authorization": f"Bearer {rig.key}"},
        timeout=60,
    )
    assert stored.status_code == 200, stored.text
    yield rig
    # Whatever a test did, the next one starts with both services answering.
    os.kill(proxy.pid, signal.SIGCONT)
    if own_redis.process is None or own_redis.process.poll() is not None:
        own_redis.start()
    else:
        own_redis.signal(signal.SIGCONT)
    eventually_ready(rig)


def eventually_ready(rig: Rig, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        response, _ = rig.get("/readyz", key=False)
        if response.status_code == 200:
            return
        time.sleep(0.5)
    raise AssertionError(f"not ready again after {within}s: {response.text}\n{rig.server.log()[-3000:]}")


def answered_on_loop(rig: Rig, route: str) -> float:
    """How many requests of `route` its loop route has answered itself (apps.tenants.loop)."""
    text = httpx.get(f"{rig.server.url}/metrics", timeout=10).text
    wanted = f'slop_http_event_loop_requests_total{{outcome="answered",route="{route}"}}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(wanted))


def test_redis_killed_endpoints_that_do_not_need_it_keep_answering(rig: Rig) -> None:
    assert rig.get("/memory/absent")[0].status_code == 404  # (the key is known to the process)
    on_loop = answered_on_loop(rig, "memory/<path:key>")
    rig.redis.kill()

    info, _ = rig.get("/info", key=False)
    assert info.status_code == 200, info.text  # anonymous: rate-limited per address, in-process now
    thread, _ = rig.get(THREAD)
    assert thread.status_code == 200 and thread.json()["messages"][0]["content"] == "kept"
    # Served by their direct routes (apps.tenants.direct): the rate limit counts in process too.
    missing, _ = rig.get("/memory/absent")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found", missing.text
    keyed_info, _ = rig.get("/info")
    assert keyed_info.status_code == 200 and keyed_info.json()["tenant"]["slug"] == "faults"
    # GET /memory/:key was answered on the event loop, its rate limit counted in process.
    assert answered_on_loop(rig, "memory/<path:key>") > on_loop
    job = httpx.post(
        f"{rig.server.url}/tools/calculator?async=true",
        json={"expression": "6*7"},
        headers={"Authorization": f"Bearer {rig.key}"},
        timeout=30,
    )
    assert job.status_code == 202, job.text  # stored as queued; sent again once the broker is back
    ready, seconds = rig.get("/readyz", key=False)
    assert ready.status_code == 503 and ready.json()["checks"] == {"database": "ok", "redis": "unavailable"}
    assert seconds < 5

    rig.redis.start()  # same port, empty: recovery without restarting the server
    eventually_ready(rig)
    time.sleep(2.5)  # the breaker's retry window (SLOP_REDIS_RETRY_AFTER_SECONDS)
    assert rig.get(THREAD)[0].status_code == 200
    counters = redis.Redis.from_url(rig.redis.url).keys("*rl:*")  # Django prefixes ":1:"
    assert counters, "the rate limit counts in Redis again"


def test_redis_paused_costs_a_request_at_most_its_socket_timeout(rig: Rig) -> None:
    rig.redis.signal(signal.SIGSTOP)
    try:
        first, first_seconds = rig.get(THREAD)
        assert first.status_code == 200
        assert first_seconds < 6  # one socket timeout (1 s) and the machine's load
        later = [rig.get("/info", key=False) for _ in range(3)]
        assert all(response.status_code == 200 for response, _ in later)
        assert max(seconds for _, seconds in later) < 3  # the breaker: Redis is not asked again
        ready, seconds = rig.get("/readyz", key=False)
        assert ready.status_code == 503 and seconds < 5
    finally:
        rig.redis.signal(signal.SIGCONT)
    eventually_ready(rig)


def test_database_frozen_is_a_503_within_bounds_and_recovers(rig: Rig) -> None:
    assert rig.get("/memory/absent")[0].status_code == 404  # (the key is known to the process)
    on_loop = answered_on_loop(rig, "memory/<path:key>")
    os.kill(rig.proxy.pid, signal.SIGSTOP)
    try:
        response, seconds = rig.get(THREAD)
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["code"] == "service_unavailable" and body["dependency"] == "database"
        assert body["status"] == 503 and response.headers["Retry-After"]
        # the statement deadline (2 s + 2 s), or the pool's and connect timeouts (2 s each)
        assert seconds < 12
        # GET /memory/:key, answered on the event loop, answers the same way.
        memory, memory_seconds = rig.get("/memory/absent")
        assert memory.status_code == 503 and memory.json()["dependency"] == "database", memory.text
        assert memory_seconds < 12
        assert answered_on_loop(rig, "memory/<path:key>") == on_loop + 1  # (its asyncio pool)
        ready, ready_seconds = rig.get("/readyz", key=False)
        assert ready.status_code == 503 and ready.json()["checks"]["database"] == "unavailable"
        assert ready_seconds < 5
    finally:
        os.kill(rig.proxy.pid, signal.SIGCONT)
    eventually_ready(rig)
    deadline = time.monotonic() + 20
    while (response := rig.get(THREAD)[0]).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert response.status_code == 200 and response.json()["messages"][0]["content"] == "kept"
