"""One generic isolation and scope test for every route `get_resolver()` serves.

For each route, a case creates objects as Alice's team through the API; then, for every method the
route serves, a probe asserts that Charlie's team (a key with every scope) gets 404 on Alice's
object, or never sees it in a list, search or stream; that a key of Alice's lacking the route's
scope area gets the seed's 403 naming the scope needed; and that none of it changed Alice's data.
A route, or a method of one, without a probe fails `test_every_route_has_a_case`; WebSocket routes
(Channels, not in `get_resolver()`) get the same treatment per message.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import get_resolver

from apps.billing.accounts import account_for
from apps.chat import runs
from apps.pay.models import Payment
from apps.tenants.models import Tenant
from apps.tenants.scopes import AREAS
from slop_platform.asgi import application
from slop_platform.routing import websocket_urlpatterns
from tests.core.route_access import (
    PUBLIC_NAMESPACES,
    routes,
    uncovered,
    uncovered_websockets,
    websocket_routes,
)

pytestmark = pytest.mark.django_db

SECRET = "TOPSECRET-alice"


@dataclass(frozen=True)
class Probe:
    method: str
    path: str  # formatted with the case's values
    scope: str  # the required_scope a key without the area is refused with (formatted too)
    sees: str = "object"  # object: 404 for Charlie; list: never mentions Alice's; own: acts on his own
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    setup: Callable[[Any, Tenant], dict[str, str]]  # Alice's client and team → values for the paths
    probes: tuple[Probe, ...]
    snapshot: tuple[str, ...]  # Alice's GETs that must answer the same after every probe


# --- Setups: Alice's objects, made through the API where it can make them -----------------------


def _ok(response: Any) -> Any:
    assert response.status_code in (200, 201, 202), response.content
    return response.json()


def memory_setup(client: Any, tenant: Tenant) -> dict[str, str]:
    for key in ("alice/secret", "query"):  # `query` is the key GET /memory/query reaches
        _ok(client.post("/memory", {"key": key, "value": SECRET}, format="json"))
    return {"key": "alice/secret"}


def resources_setup(client: Any, tenant: Tenant) -> dict[str, str]:
    body = {"id": "alice/notes", "title": "Alice's notes", "content": f"{SECRET} launch plans"}
    _ok(client.post("/resources", body, format="json"))
    return {"resource": "alice/notes"}


def tools_setup(client: Any, tenant: Tenant) -> dict[str, str]:
    hook = {"url": "https://93.184.215.14/hook", "description": f"{SECRET} hook"}
    _ok(client.put("/tools/alice-hook", hook, format="json"))
    job = _ok(client.post("/tools/calculator?async=true", {"expression": "6*7"}, format="json"))
    return {"tool": "alice-hook", "job": job["job_id"]}


def chat_setup(client: Any, tenant: Tenant) -> dict[str, str]:
    chat = _ok(client.post("/chat", {"messages": [{"content": f"{SECRET} alone"}]}, format="json"))
    body = {"thread_id": "thread_alice", "messages": [{"content": f"{SECRET} in a thread"}]}
    _ok(client.post("/chat", body, format="json"))
    # A stream Alice is running (what POST /chat/stream leaves in the process while it streams).
    run = runs.Run(run_id="chat_01ALICERUN", tenant_id=int(tenant.pk), thread_id="thread_alice")
    runs._runs[(run.tenant_id, run.run_id)] = run
    return {"chat": chat["id"], "thread": "thread_alice", "run": run.run_id}


def pay_setup(client: Any, tenant: Tenant) -> dict[str, str]:
    # Charging needs Stripe (tests/pay); a settled payment row is all the access rules look at.
    payment = Payment.objects.create(
        tenant=tenant,
        id="tx_01ALICEPAYMENT",
        amount=Decimal("5.00"),
        amount_minor=500,
        currency="USD",
        description=SECRET,
        payment_method="pm_card_visa",
        status="success",
        request_fingerprint="f" * 64,
    )
    return {"payment": payment.id}


def agents_setup(client: Any, tenant: Tenant) -> dict[str, str]:
    body = {"id": "alice-agent", "description": f"{SECRET} specialist", "instructions": SECRET}
    _ok(client.post("/agents", body, format="json"))
    return {"agent": "alice-agent"}


def billing_setup(client: Any, tenant: Tenant) -> dict[str, str]:
    # Alice's team with a Stripe customer and a subscription (what checkout and the webhooks make);
    # Stripe is not configured here, so Charlie's own checkout and portal answer 503, naming it.
    account = account_for(tenant)
    account.stripe_customer_id = f"cus_{SECRET}"
    account.stripe_subscription_id = f"sub_{SECRET}"
    account.save()
    return {"customer": account.stripe_customer_id}


def usage_setup(client: Any, tenant: Tenant) -> dict[str, str]:
    # Metered usage that names Alice's end user and agent (what /usage groups by).
    agents_setup(client, tenant)
    body = {"messages": [{"content": "metered"}], "agent": "alice-agent"}
    _ok(client.post("/chat", body, format="json", HTTP_X_SLOP_USER=SECRET))
    return {"agent": "alice-agent"}


# --- The cases, by route name -----------------------------------------------------------------

_MEMORY = ("/memory/{key}", "/memory/query")
_RESOURCES = ("/resources/{resource}",)
_TOOLS = ("/tools/{tool}", "/tools/jobs/{job}")
_CHAT = ("/chat/{chat}", "/chat/{thread}")
_PAY = ("/pay/{payment}",)
_AGENTS = ("/agents/{agent}",)
_USAGE = ("/usage?group_by=user", "/usage?group_by=agent")
_SEND = {"thread_id": "thread_alice", "messages": [{"content": "hello"}]}
_RESUME = {"HTTP_LAST_EVENT_ID": "{run}:0"}
_ASK_AGENT = {"model": "agent:{agent}", "messages": [{"role": "user", "content": "hello"}]}
_ASK_MODEL = {"model": "echo", "messages": [{"role": "user", "content": "hello"}]}

CASES: dict[str, Case] = {
    "memory": Case(
        memory_setup,
        (
            Probe("GET", "/memory", "memory.read", "list"),
            Probe("POST", "/memory", "memory.{key}.write", "own", {"key": "{key}", "value": "charlie"}),
        ),
        _MEMORY,
    ),
    "memory-query": Case(
        memory_setup,
        (
            Probe("POST", "/memory/query", "memory.read", "list", {"query": SECRET}),
            Probe("GET", "/memory/query", "memory.query.read"),
            Probe("PUT", "/memory/query", "memory.query.write", body={"value": "charlie"}),
            Probe("DELETE", "/memory/query", "memory.query.write"),
        ),
        _MEMORY,
    ),
    "memory-item": Case(
        memory_setup,
        (
            Probe("GET", "/memory/{key}", "memory.{key}.read"),
            Probe("PUT", "/memory/{key}", "memory.{key}.write", body={"value": "charlie"}),
            Probe("DELETE", "/memory/{key}", "memory.{key}.write"),
        ),
        _MEMORY,
    ),
    "resources": Case(
        resources_setup,
        (
            Probe("GET", "/resources", "resources.read", "list"),
            Probe(
                "POST",
                "/resources",
                "resources.{resource}.write",
                "own",
                {"id": "{resource}", "title": "Charlie's", "content": "charlie"},
            ),
        ),
        _RESOURCES,
    ),
    "resources-search": Case(
        resources_setup,
        (Probe("GET", f"/resources/search?q={SECRET}", "resources.read", "list"),),
        _RESOURCES,
    ),
    "resources-prefix": Case(
        resources_setup,
        (Probe("GET", "/resources/prefix/alice", "resources.alice/.read", "list"),),
        _RESOURCES,
    ),
    "resource": Case(
        resources_setup,
        (
            Probe("GET", "/resources/{resource}", "resources.{resource}.read"),
            Probe("PUT", "/resources/{resource}", "resources.{resource}.write", body={"title": "x"}),
            Probe("PATCH", "/resources/{resource}", "resources.{resource}.write", body={"title": "x"}),
            Probe("DELETE", "/resources/{resource}", "resources.{resource}.write"),
        ),
        _RESOURCES,
    ),
    "tools": Case(tools_setup, (Probe("GET", "/tools", "tools.list", "list"),), _TOOLS),
    "tool": Case(
        tools_setup,
        (
            Probe("GET", "/tools/{tool}", "tools.{tool}.read"),
            Probe("POST", "/tools/{tool}", "tools.{tool}.execute", body={}),
            Probe("DELETE", "/tools/{tool}", "tools.{tool}.write"),
            Probe("PUT", "/tools/{tool}", "tools.{tool}.write", "own", {"url": "https://93.184.215.14/c"}),
        ),
        _TOOLS,
    ),
    "tool-jobs": Case(tools_setup, (Probe("GET", "/tools/jobs", "tools.list", "list"),), _TOOLS),
    "tool-job": Case(
        tools_setup,
        (
            Probe("GET", "/tools/jobs/{job}", "tools.calculator.read"),
            Probe("DELETE", "/tools/jobs/{job}", "tools.calculator.execute"),
        ),
        _TOOLS,
    ),
    "tool-job-stream": Case(
        tools_setup, (Probe("GET", "/tools/jobs/{job}/stream", "tools.calculator.read"),), _TOOLS
    ),
    "chat": Case(
        chat_setup,
        (
            Probe("GET", "/chat", "chat.read", "list"),
            Probe("GET", "/chat?type=threads", "chat.read", "list"),
            Probe("POST", "/chat", "chat.{thread}.write", "own", _SEND),
        ),
        _CHAT,
    ),
    "chat-detail": Case(
        chat_setup,
        (
            Probe("GET", "/chat/{chat}", "chat.{chat}.read"),
            Probe("GET", "/chat/{thread}", "chat.{thread}.read"),
        ),
        _CHAT,
    ),
    "chat-stream": Case(
        chat_setup,
        (
            Probe("GET", "/chat/stream", "chat.{thread}.read", headers=_RESUME),
            Probe("POST", "/chat/stream", "chat.{thread}.read", body={}, headers=_RESUME),
            Probe("GET", "/chat/stream?content=hi&thread_id={thread}", "chat.{thread}.write", "own"),
            Probe("POST", "/chat/stream", "chat.{thread}.write", "own", _SEND),
        ),
        _CHAT,
    ),
    "chat-tickets": Case(chat_setup, (Probe("POST", "/chat/tickets", "chat.write", "own"),), _CHAT),
    "pay": Case(
        pay_setup,
        (
            Probe("GET", "/pay", "pay.read", "list"),
            Probe(
                "POST",
                "/pay",
                "pay.execute",
                "own",
                {"amount": 5, "currency": "USD", "payment_method": "pm_card_visa"},
            ),
        ),
        _PAY,
    ),
    "agents": Case(
        agents_setup,
        (
            Probe("GET", "/agents", "agents.read", "list"),
            Probe("POST", "/agents", "agents.{agent}.write", "own", {"id": "{agent}", "name": "Charlie's"}),
        ),
        _AGENTS,
    ),
    "agent": Case(
        agents_setup,
        (
            Probe("GET", "/agents/{agent}", "agents.{agent}.read"),
            Probe("PUT", "/agents/{agent}", "agents.{agent}.write", body={"name": "x"}),
            Probe("DELETE", "/agents/{agent}", "agents.{agent}.write"),
        ),
        _AGENTS,
    ),
    "pay-detail": Case(pay_setup, (Probe("GET", "/pay/{payment}", "pay.read"),), _PAY),
    "usage": Case(
        usage_setup,
        (
            Probe("GET", "/usage?group_by=user", "usage.read", "list"),
            Probe("GET", "/usage?group_by=agent", "usage.read", "list"),
        ),
        _USAGE,
    ),
    "billing": Case(usage_setup, (Probe("GET", "/billing", "billing.read", "list"),), _USAGE),
    "pay-refund": Case(pay_setup, (Probe("POST", "/pay/{payment}/refund", "pay.execute"),), _PAY),
    "billing-checkout": Case(
        billing_setup, (Probe("POST", "/billing/checkout", "billing.write", "own", {"plan": "pro"}),), ()
    ),
    "billing-portal": Case(billing_setup, (Probe("POST", "/billing/portal", "billing.write", "own"),), ()),
    # The OpenAI door (apps/facades/openai): its errors are OpenAI's shape, read through _error().
    "openai-models": Case(agents_setup, (Probe("GET", "/v1/models", "chat.write", "list"),), _AGENTS),
    "openai-chat-completions": Case(
        agents_setup,
        (
            Probe("POST", "/v1/chat/completions", "agents.{agent}.execute", body=_ASK_AGENT),
            Probe("POST", "/v1/chat/completions", "chat.write", "own", _ASK_MODEL),
        ),
        _AGENTS,
    ),
}


# A WebSocket route's case: a message sent as Charlie, refused without the area, as an HTTP probe.
WEBSOCKET_CASES: dict[str, Case] = {
    "chat/ws": Case(chat_setup, (Probe("WS", "/chat/ws", "chat.{thread}.write", "own", _SEND),), _CHAT),
}


# --- The checks -------------------------------------------------------------------------------


def test_every_route_has_a_case() -> None:
    found = routes(get_resolver())
    assert not uncovered(found, CASES), "\n".join(uncovered(found, CASES))
    served = {route.name for route in found if route.namespace not in PUBLIC_NAMESPACES}
    assert not set(CASES) - served, f"cases for routes that no longer exist: {set(CASES) - served}"
    sockets = websocket_routes(websocket_urlpatterns)
    assert not uncovered_websockets(sockets, WEBSOCKET_CASES), "\n".join(
        uncovered_websockets(sockets, WEBSOCKET_CASES)
    )
    assert set(WEBSOCKET_CASES) == {socket.path for socket in sockets}


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**values)
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    return value


def _send(client: Any, probe: Probe, values: dict[str, str]) -> Any:
    call = getattr(client, probe.method.lower())
    extra = _fill(probe.headers, values)
    if probe.body is None:
        return call(_fill(probe.path, values), **extra)
    return call(_fill(probe.path, values), _fill(probe.body, values), format="json", **extra)


def _text(response: Any) -> str:
    return "" if response.streaming else response.content.decode()


def _error(response: Any) -> dict[str, Any]:
    """The error's fields: the body itself (PROTOCOL.md §2), or its `error` object under /v1 (OpenAI's
    shape, where a missing object's code is OpenAI's `model_not_found`)."""
    body: dict[str, Any] = response.json()
    if isinstance(body.get("error"), dict):
        inner: dict[str, Any] = body["error"]
        return {**inner, "code": "not_found" if inner["code"] == "model_not_found" else inner["code"]}
    return body


def _lacking(area: str) -> str:
    return ",".join(f"{other}.*" for other in sorted(AREAS) if other != area)


@pytest.fixture(autouse=True)
def _forget_planted_runs() -> Iterator[None]:
    yield
    for key in [key for key in runs._runs if key[1] == "chat_01ALICERUN"]:
        del runs._runs[key]


@pytest.mark.parametrize("name", sorted(CASES))
def test_route_keeps_tenants_apart_and_checks_scopes(
    name: str, alice: Tenant, charlie: Tenant, client_for: Any
) -> None:
    case = CASES[name]
    owner = client_for(alice)
    values = case.setup(owner, alice)
    alices = [SECRET, *values.values()]

    def snapshot() -> dict[str, Any]:
        return {path: json.loads(owner.get(_fill(path, values)).content) for path in case.snapshot}

    before = snapshot()
    stranger = client_for(charlie)
    # Charlie's own writes come last, so that no list he reads holds an id he wrote himself.
    for probe in sorted(case.probes, key=lambda probe: probe.sees == "own"):
        where = f"{probe.method} {_fill(probe.path, values)}"
        answer = _send(stranger, probe, values)
        if probe.sees == "object":
            assert answer.status_code == 404, f"{where}: Charlie got {answer.status_code}, not 404"
            assert _error(answer)["code"] == "not_found"
        elif probe.sees == "list":
            assert answer.status_code == 200, f"{where}: {answer.status_code} {_text(answer)}"
            leaked = [item for item in alices if item in _text(answer)]
            assert not leaked, f"{where}: Charlie's answer mentions {leaked}"
        else:
            assert answer.status_code != 500 and SECRET not in _text(answer), f"{where}: {_text(answer)}"
        area = probe.scope.split(".")[0]
        refused = _send(client_for(alice, _lacking(area)), probe, values)
        assert refused.status_code == 403, f"{where} without {area}.*: {refused.status_code} {_text(refused)}"
        assert _error(refused)["required_scope"] == _fill(probe.scope, values), where
        assert _error(refused)["code"] == "scope_violation"
    assert snapshot() == before, f"{name}: a refused request changed Alice's data"


@pytest.fixture
def _release_worker_connections() -> Iterator[None]:
    # A run stores its reply from a worker thread of the test's event loop; the loop is gone after
    # the test and its threads' database sessions go with them only once they are collected.
    yield
    gc.collect()


async def _ws_exchange(key: str, path: str, message: dict[str, Any]) -> list[dict[str, Any]]:
    communicator = WebsocketCommunicator(application, path, headers=[(b"x-api-key", key.encode())])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to(message)
    events = [await communicator.receive_json_from(timeout=10)]
    while events[-1] != {"status": "complete"}:
        events.append(await communicator.receive_json_from(timeout=10))
    await communicator.disconnect()
    return events


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_release_worker_connections")
@pytest.mark.parametrize("path", sorted(WEBSOCKET_CASES))
async def test_websocket_route_keeps_tenants_apart_and_checks_scopes(
    path: str, alice: Tenant, charlie: Tenant, make_key: Any
) -> None:
    case = WEBSOCKET_CASES[path]
    owner_key = await sync_to_async(make_key)(alice)

    def setup_and_snapshot() -> tuple[dict[str, str], Callable[[], dict[str, Any]]]:
        from tests.conftest import SlopClient

        owner = SlopClient().with_key(owner_key)
        values = case.setup(owner, alice)

        def snapshot() -> dict[str, Any]:
            return {p: json.loads(owner.get(_fill(p, values)).content) for p in case.snapshot}

        return values, snapshot

    values, snapshot = await sync_to_async(setup_and_snapshot)()
    before = await sync_to_async(snapshot)()
    for probe in case.probes:
        message = _fill(probe.body, values)
        events = await _ws_exchange(await sync_to_async(make_key)(charlie), probe.path, message)
        assert events[-2]["type"] == "done" and SECRET not in json.dumps(events), events
        area = probe.scope.split(".")[0]
        refused = await _ws_exchange(
            await sync_to_async(make_key)(alice, _lacking(area)), probe.path, message
        )
        assert refused[0]["code"] == "scope_violation", refused
        assert refused[0]["required_scope"] == _fill(probe.scope, values)
    assert await sync_to_async(snapshot)() == before
