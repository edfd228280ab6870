"""The real server over HTTP: Daphne + Django + embedded PostgreSQL, as a client sees it."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create, api_key_revoke
from tests.e2e.conftest import ROOT, LiveServer, database_url_for_subprocess

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_info_anonymous_and_authenticated(slop_server: LiveServer) -> None:
    tenant = Tenant.objects.create(slug="e2e", name="E2E")
    key = api_key_create(tenant=tenant, scopes="memory.*").plaintext
    anonymous = httpx.get(f"{slop_server.url}/info", timeout=10)
    assert anonymous.status_code == 200 and "tenant" not in anonymous.json()
    mine = httpx.get(f"{slop_server.url}/info", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert mine.json()["tenant"]["slug"] == "e2e"
    assert mine.json()["scopes"]["granted"] == ["memory.*"]


def test_errors_are_json_over_the_wire(slop_server: LiveServer) -> None:
    response = httpx.get(f"{slop_server.url}/nope", timeout=10)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    response = httpx.get(f"{slop_server.url}/info", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
    big = httpx.post(f"{slop_server.url}/info", content=b"x" * (3 * 1024 * 1024), timeout=10)
    assert big.status_code == 413 and big.json()["code"] == "payload_too_large"


def test_a_key_made_by_the_command_works_and_revocation_reaches_the_server(slop_server: LiveServer) -> None:
    Tenant.objects.create(slug="ops", name="Ops")
    env = {**os.environ, "DATABASE_URL": database_url_for_subprocess()}
    key = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", "ops", "--scopes", "*"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{slop_server.url}/info", headers=headers, timeout=10).json()["tenant"]["slug"] == "ops"
    api_key_revoke(prefix=key.split("_")[2])
    # The server trusts a looked-up key for at most 5 seconds.
    import time

    deadline = time.monotonic() + 8
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = httpx.get(f"{slop_server.url}/info", headers=headers, timeout=10).status_code
        time.sleep(0.25)
    assert status == 401


def test_health_endpoints(slop_server: LiveServer) -> None:
    assert httpx.get(f"{slop_server.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert httpx.get(f"{slop_server.url}/readyz", timeout=10).json()["status"] == "ready"
