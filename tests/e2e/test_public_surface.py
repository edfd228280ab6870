"""The SLOP reference clients, key-less, against the real server.

The request sequences are those of the reference Python client (examples/python/slop.py of the
SLOP repository: chat, tools, memory, resources, pay) and of the ZAP validator
(utilities/za-api-prover). Sent with no credential at all to a server started as `make run` starts
it (SLOP_DEMO_PUBLIC_LOOPBACK), they act on the demo tenant's public surface at the root; the same
requests under /t/<slug>/ of a tenant with no public scopes are all 401.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from django.core.management import call_command

from apps.memory.models import MemoryItem
from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create
from tests.e2e.conftest import LiveServer, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def make_run_server(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with django_db_blocker.unblock():
        # make run's setting; tenants are re-created per test, so the server must not keep them
        server = start_server(
            {"SLOP_DEMO_PUBLIC_LOOPBACK": "true", "SLOP_KEY_CACHE_SECONDS": "0"},
            tmp_path_factory.mktemp("public"),
        )
    yield server
    stop_server(server)


@pytest.fixture
def demo(tmp_path: Path, settings: Any) -> Tenant:
    settings.DATA_DIR = tmp_path
    call_command("ensure_demo_tenant", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return Tenant.objects.get(slug="demo")


def reference_python_client(base: str) -> list[tuple[str, str, int]]:
    """The reference client's requests, in order, with no headers of ours: (method, path, status)."""
    seen: list[tuple[str, str, int]] = []
    with httpx.Client(base_url=base, timeout=60) as http:

        def call(method: str, path: str, body: Any = None) -> httpx.Response:
            response = http.request(method, path, json=body)
            seen.append((method, path, response.status_code))
            return response

        chat = call("POST", "/chat", {"messages": [{"content": "Hello SLOP!"}]})
        chat_id = chat.json().get("id", "chat_missing") if chat.status_code == 200 else "chat_missing"
        call("GET", f"/chat/{chat_id}")
        call("GET", "/chat")
        call("GET", "/tools")
        call("POST", "/tools/calculator", {"expression": "2 + 2"})
        call("GET", "/tools/calculator")
        call("POST", "/memory", {"key": "test", "value": "hello world"})
        call("GET", "/memory/test")
        call("GET", "/memory")
        call("DELETE", "/memory/test")
        call("GET", "/resources")
        call("GET", "/resources/hello")
        call("POST", "/pay", {"amount": 10})
    return seen


def zap_validator(base: str) -> list[tuple[str, str, int]]:
    seen: list[tuple[str, str, int]] = []
    with httpx.Client(base_url=base, timeout=60) as http:
        for method, path, body in [
            ("POST", "/chat", {"messages": [{"role": "user", "content": "Hello SLOP!"}]}),
            ("GET", "/tools", None),
            ("POST", "/memory", {"key": "zap_test", "value": "hello world"}),
            ("GET", "/memory/zap_test", None),
            ("GET", "/resources", None),
            ("POST", "/pay", {"amount": 10}),
        ]:
            seen.append((method, path, http.request(method, path, json=body).status_code))
    return seen


def _is_pay(path: str) -> bool:
    return path.startswith("/pay")


def test_reference_clients_work_key_less_against_make_run(make_run_server: LiveServer, demo: Tenant) -> None:
    # the data the reference client reads back: the seed's `hello` resource, put there with a key
    key = api_key_create(tenant=demo, scopes="*").plaintext
    created = httpx.post(
        f"{make_run_server.url}/resources",
        json={"id": "hello", "title": "Hello", "content": "Hello, SLOP!"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert created.status_code == 201, created.text

    for base in (make_run_server.url, f"{make_run_server.url}/t/demo"):
        for method, path, status in reference_python_client(base) + zap_validator(base):
            if _is_pay(path):  # the demo's public scopes are everything but pay
                assert status == 403, (base, method, path, status)
            else:
                assert 200 <= status < 300, (base, method, path, status)
    assert MemoryItem.objects.for_tenant(demo).filter(key="zap_test").exists()
    info = httpx.get(f"{make_run_server.url}/info", timeout=10).json()
    assert info["tenant"]["slug"] == "demo" and info["public_surface"]["base_url"] == "/t/demo"


def test_a_tenant_without_public_scopes_answers_401_to_all_of_it(make_run_server: LiveServer) -> None:
    closed = Tenant.objects.create(slug="closed-team", name="Closed")
    for base in (f"{make_run_server.url}/t/closed-team", f"{make_run_server.url}/t/no-such-team"):
        seen = reference_python_client(base) + zap_validator(base)
        assert {status for _, _, status in seen} == {401}, seen
    assert not MemoryItem.objects.for_tenant(closed).exists()


def test_websocket_chat_on_the_public_surface(make_run_server: LiveServer, demo: Tenant) -> None:
    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with websockets.connect(f"{make_run_server.ws_url}/t/demo/chat/ws") as ws:
            await ws.send(json.dumps({"messages": [{"content": "hello public"}]}))
            events = []
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 30))
                events.append(event)
                if event.get("status") == "complete":
                    break
            out["events"] = events
        async with websockets.connect(f"{make_run_server.ws_url}/t/no-such-team/chat/ws") as ws:
            out["refused"] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        return out

    out = asyncio.run(scenario())
    done = [event for event in out["events"] if event.get("type") == "done"]
    assert done and done[0]["message"]["content"] == "hello public"
    assert out["refused"]["type"] == "error" and out["refused"]["code"] == "unauthenticated"
