"""What GET /memory/:key, GET /info and POST /memory answer, pinned to the byte: status, the view's
headers in their order, X-Request-ID, and the body, for a success and for every refusal.

These three are the platform's busiest requests and are served by a lean dispatch
(apps/tenants/api.py) rather than all of DRF's: these answers were recorded from DRF's before it
existed, so any drift shows here.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import Client, RequestFactory
from django.test.utils import override_settings
from django.utils import timezone

from apps.core import loop_io
from apps.core.embeddings import embedding_model_id
from apps.core.embeddings.usage import forget_noted, note_embedded
from apps.memory.models import KEY_MAX_LENGTH, MemoryItem
from apps.memory.services import memory_item_store
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.services import api_key_create, api_key_revoke, tenant_public_scopes_set
from slop_platform.asgi import DIRECT, LOOP

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_rate_window")]

REQUEST_ID = "pin-req-1"
AUTH = 'Bearer realm="slop"'
ITEM_ALLOW = "GET, PUT, DELETE, HEAD, OPTIONS"
COLLECTION_ALLOW = "GET, POST, HEAD, OPTIONS"
INFO_ALLOW = "GET, HEAD, OPTIONS"
# What the view itself writes, in the order it writes it; the middleware's headers come after.
VIEW_HEADERS = ("Content-Type", "WWW-Authenticate", "Retry-After", "Allow", "Vary")


class Answer:
    def __init__(self, response: Any) -> None:
        self.status = response.status_code
        self.headers = list(response.headers.items())
        self.content = bytes(response.content)

    def view_headers(self) -> list[tuple[str, str]]:
        return [(name, value) for name, value in self.headers if name in VIEW_HEADERS]

    def header(self, name: str) -> str | None:
        return dict(self.headers).get(name)

    def json(self) -> Any:
        return json.loads(self.content)


class WsgiAnswer(Answer):
    def __init__(self, status: str, headers: list[tuple[str, str]], content: bytes) -> None:
        self.status = int(status.split(" ", 1)[0])
        self.headers = headers
        self.content = content


# "django": every request through Django's URL resolution and the view (the test client);
# "direct": what a route of apps.core.serving's front takes directly (DIRECT in slop_platform/asgi.py)
# goes through it, the rest through the test client;
# "loop": what a loop route takes (LOOP) is first offered to it, under the event loop's rule (no
# database but through apps.core.loop_io); what it hands on goes the "direct" way.
VIA = ["django"]
SERVED_DIRECTLY: list[str] = []
SERVED_ON_LOOP: list[str] = []


@pytest.fixture(params=["django", "direct", "loop"], autouse=True)
def via(request: pytest.FixtureRequest) -> Iterator[str]:
    VIA[0] = request.param
    SERVED_DIRECTLY.clear()
    SERVED_ON_LOOP.clear()
    yield request.param
    VIA[0] = "django"


def call(method: str, path: str, key: str | None = None, body: Any = None, **headers: str) -> Answer:
    extra = {"HTTP_X_REQUEST_ID": REQUEST_ID, **headers}
    if key is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs["data"] = body if isinstance(body, bytes | str) else json.dumps(body)
        kwargs["content_type"] = extra.pop("CONTENT_TYPE", "application/json")
    answer = (
        (VIA[0] == "loop" and _on_loop(method, path, kwargs, extra))
        or (VIA[0] in ("direct", "loop") and _direct(method, path, kwargs, extra))
        or Answer(getattr(Client(), method.lower())(path, **kwargs, **extra))
    )
    assert answer.header("X-Request-ID") == REQUEST_ID
    return answer


def _scope_of(environ: dict[str, Any]) -> dict[str, Any]:
    headers = [
        (name[5:].replace("_", "-").lower().encode(), str(value).encode("latin-1"))
        for name, value in environ.items()
        if name.startswith("HTTP_")
    ]
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            headers.append((name.replace("_", "-").lower().encode(), str(environ[name]).encode()))
    if "HTTP_HOST" not in environ:  # what Django's test client's requests name as their host
        headers.append((b"host", environ["SERVER_NAME"].encode()))
    return {
        "type": "http",
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "query_string": environ.get("QUERY_STRING", "").encode(),
        "headers": headers,
        "client": ("127.0.0.1", 50000),
    }


# The names Django writes (the loop route sends them lowercase, as the front sends every answer).
_HEADER_NAMES = {
    name.lower(): name
    for name in (
        *VIEW_HEADERS,
        "X-Request-ID",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
    )
}


def _on_loop(method: str, path: str, kwargs: dict[str, Any], extra: dict[str, str]) -> Answer | None:
    """The request answered by the loop route that accepts its ASGI scope, if one does and does
    not hand it on. It runs as on the event loop: Django's database refuses it (as Django does on
    a loop: SynchronousOnlyOperation) but for apps.core.loop_io.fetch_one, which reads here
    through the test's connection (its transaction holds the rows)."""
    environ = RequestFactory().generic(method, path, **kwargs, **extra).environ
    scope = _scope_of(environ)
    route = next((route for route in LOOP if route.accepts(scope)), None)
    if route is None:
        return None
    fetching, refused = [False], [False]

    def refuse(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not fetching[0]:
            refused[0] = True
            raise SynchronousOnlyOperation("no database on the event loop but through loop_io")
        return execute(sql, params, many, context)

    async def fetch_one(sql: str, params: tuple[Any, ...]) -> Any:
        fetching[0] = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()
        finally:
            fetching[0] = False

    coroutine = route.answer(scope, environ["wsgi.input"].read())
    with connection.execute_wrapper(refuse), patch.object(loop_io, "fetch_one", fetch_one):
        try:
            coroutine.send(None)
        except StopIteration as done:
            answer = done.value
        else:
            raise AssertionError("the loop route waited on I/O the test does not give it")
    if refused[0]:
        # No statement ran; but a write refused inside the test's transaction (atomic) marked it
        # for rollback, which no request outside one (autocommit) is.
        connection.needs_rollback, connection.rollback_exc = False, None
    if answer is None:
        return None
    SERVED_ON_LOOP.append(f"{method} {path}")
    status, headers, body = answer
    named = [
        (_HEADER_NAMES.get(name.decode(), name.decode()), value.decode("latin-1")) for name, value in headers
    ]
    return WsgiAnswer(str(status), named, body)


def _direct(method: str, path: str, kwargs: dict[str, Any], extra: dict[str, str]) -> Answer | None:
    """The request through the direct route that accepts its ASGI scope, if one does."""
    environ = RequestFactory().generic(method, path, **kwargs, **extra).environ
    scope = _scope_of(environ)
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        started.extend([status, headers])

    for route in DIRECT:
        if route.accepts(scope):
            # As Django's test client does: the test's transaction keeps its connection.
            request_started.disconnect(close_old_connections)
            request_finished.disconnect(close_old_connections)
            try:
                result = route.app(environ, start_response)
                content = b"".join(result)
                result.close()  # type: ignore[attr-defined]
            finally:
                request_started.connect(close_old_connections)
                request_finished.connect(close_old_connections)
            SERVED_DIRECTLY.append(f"{method} {path}")
            return WsgiAnswer(started[0], started[1], content)
    return None


def error(message: str, code: str, status: int, **extra: Any) -> bytes:
    return json.dumps(
        {"error": message, "code": code, "status": status, **extra}, separators=(",", ":"), ensure_ascii=False
    ).encode()


def refused(answer: Answer, status: int, body: bytes, allow: str, *, www: bool = False) -> None:
    assert (answer.status, answer.content) == (status, body)
    expected = [("Content-Type", "application/json")]
    if www:
        expected.append(("WWW-Authenticate", AUTH))
    expected.append(("Allow", allow))
    assert answer.view_headers() == expected


@pytest.fixture
def key(alice: Tenant, make_key: Callable[..., str]) -> str:
    return make_key(alice)


@pytest.fixture
def item(alice: Tenant) -> MemoryItem:
    memory_item_store(tenant=alice, key="k1", value={"theme": "dark", "n": [1, 2.5, None, "é\u2028"]})
    return MemoryItem.objects.for_tenant(alice).get(key="k1")


def item_body(item: MemoryItem) -> bytes:
    def stamp(value: Any) -> str:
        return value.isoformat().replace("+00:00", "Z")

    # DRF's JSONRenderer: compact, UTF-8, U+2028 escaped; jsonb orders the object's keys.
    return (
        '{"key":"k1","value":{"n":[1,2.5,null,"é\\u2028"],"theme":"dark"},'
        f'"created_at":"{stamp(item.created_at)}","updated_at":"{stamp(item.updated_at)}"}}'
    ).encode()


# --- GET /memory/:key ----------------------------------------------------------------------------


def test_get_item(key: str, item: MemoryItem, via: str) -> None:
    answer = call("GET", "/memory/k1", key)
    # On the loop, a key this process has not seen yet is looked up on the direct route's thread.
    assert (["GET /memory/k1"] if via in ("direct", "loop") else []) == SERVED_DIRECTLY
    assert (answer.status, answer.content) == (200, item_body(item))
    assert answer.view_headers() == [("Content-Type", "application/json"), ("Allow", ITEM_ALLOW)]
    # The X-API-Key header, X-SLOP-User and a narrowing X-SLOP-Scope that still allows it.
    same = call(
        "GET", "/memory/k1", HTTP_X_API_KEY=key, HTTP_X_SLOP_USER="user-7", HTTP_X_SLOP_SCOPE="memory.k*.read"
    )
    assert (same.status, same.content, same.headers) == (200, answer.content, answer.headers)
    assert (["GET /memory/k1"] if via == "loop" else []) == SERVED_ON_LOOP
    # Any Accept that JSON satisfies, and ?format=json.
    for accept in ("*/*", "application/json", "application/*", "text/html, application/json;q=0.5"):
        assert call("GET", "/memory/k1", key, HTTP_ACCEPT=accept).content == answer.content
    assert call("GET", "/memory/k1?format=json", key).content == answer.content


def test_get_item_head_and_options(key: str, item: MemoryItem) -> None:
    head = call("HEAD", "/memory/k1", key)
    assert (head.status, head.content) == (200, b"")
    assert head.headers == call("GET", "/memory/k1", key).headers
    options = call("OPTIONS", "/memory/k1", key)
    assert options.status == 200
    assert options.content == (
        b'{"name":"Memory Item","description":"","renders":["application/json"],'
        b'"parses":["application/json"]}'
    )
    assert options.view_headers() == [("Content-Type", "application/json"), ("Allow", ITEM_ALLOW)]


def test_get_item_orjson_cannot_write(alice: Tenant, key: str) -> None:
    # An integer past 64 bits: DRF's own encoder writes it, in the same compact form.
    memory_item_store(tenant=alice, key="big", value={"n": 2**70})
    stored = MemoryItem.objects.for_tenant(alice).get(key="big")
    answer = call("GET", "/memory/big", key)
    assert (answer.status, answer.content) == (
        200,
        b'{"key":"big","value":{"n":1180591620717411303424},'
        + f'"created_at":"{stored.created_at.isoformat().replace("+00:00", "Z")}",'.encode()
        + f'"updated_at":"{stored.updated_at.isoformat().replace("+00:00", "Z")}"}}'.encode(),
    )
    assert answer.view_headers() == [("Content-Type", "application/json"), ("Allow", ITEM_ALLOW)]


def test_get_item_indented_on_request(key: str, item: MemoryItem) -> None:
    answer = call("GET", "/memory/k1", key, HTTP_ACCEPT="application/json; indent=2")
    assert answer.status == 200
    indented = json.dumps(json.loads(item_body(item)), indent=2, ensure_ascii=False)
    assert answer.content == indented.replace("\u2028", "\\u2028").encode()


def test_get_item_refusals(
    alice: Tenant, charlie: Tenant, key: str, item: MemoryItem, make_key: Callable[..., str]
) -> None:
    missing = "Missing API key: send 'Authorization: Bearer <api key>' or 'X-API-Key'"
    refused(call("GET", "/memory/k1"), 401, error(missing, "unauthenticated", 401), ITEM_ALLOW, www=True)
    bearer = "Authorization header must be 'Bearer <api key>'"
    refused(
        call("GET", "/memory/k1", HTTP_AUTHORIZATION="Basic abc"),
        401,
        error(bearer, "unauthenticated", 401),
        ITEM_ALLOW,
        www=True,
    )
    invalid = error("Invalid API key", "unauthenticated", 401)
    refused(call("GET", "/memory/k1", "not-a-key"), 401, invalid, ITEM_ALLOW, www=True)
    forged = key[:-12] + ("A" if key[-12] != "A" else "B") + key[-11:]  # its checksum no longer holds
    refused(call("GET", "/memory/k1", forged), 401, invalid, ITEM_ALLOW, www=True)

    revoked = api_key_create(tenant=alice, scopes="*")
    api_key_revoke(prefix=revoked.api_key.prefix)
    refused(
        call("GET", "/memory/k1", revoked.plaintext),
        401,
        error("API key has been revoked", "unauthenticated", 401),
        ITEM_ALLOW,
        www=True,
    )
    expired = api_key_create(tenant=alice, scopes="*")
    ApiKey.objects.unscoped().filter(pk=expired.api_key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    refused(
        call("GET", "/memory/k1", expired.plaintext),
        401,
        error("API key has expired", "unauthenticated", 401),
        ITEM_ALLOW,
        www=True,
    )

    violation = error(
        "Scope violation: memory.k1.read requires explicit permission",
        "scope_violation",
        403,
        permitted=False,
        required_scope="memory.k1.read",
    )
    refused(call("GET", "/memory/k1", make_key(alice, "memory.other.read")), 403, violation, ITEM_ALLOW)
    refused(call("GET", "/memory/k1", key, HTTP_X_SLOP_SCOPE="memory.other.read"), 403, violation, ITEM_ALLOW)
    # A key the caller may not read is refused before anyone learns whether it exists.
    refused(
        call("GET", "/memory/absent", make_key(alice, "memory.other.read")),
        403,
        error(
            "Scope violation: memory.absent.read requires explicit permission",
            "scope_violation",
            403,
            permitted=False,
            required_scope="memory.absent.read",
        ),
        ITEM_ALLOW,
    )
    refused(
        call("GET", "/memory/k1", key, HTTP_X_SLOP_SCOPE="weather.read"),
        400,
        error(
            "Malformed X-SLOP-Scope header: Invalid scope 'weather.read': unknown area 'weather' "
            "(one of agents, billing, chat, memory, pay, resources, tools, usage, or *)",
            "invalid_scope",
            400,
            scope="weather.read",
        ),
        ITEM_ALLOW,
    )
    refused(
        call("GET", "/memory/k1", key, HTTP_X_SLOP_USER="u" * 201),
        400,
        error(
            "X-SLOP-User must be the team's own user id: 1 to 200 printable characters",
            "invalid_request",
            400,
        ),
        ITEM_ALLOW,
    )

    not_found = error("Memory key not found: absent", "not_found", 404)
    refused(call("GET", "/memory/absent", key), 404, not_found, ITEM_ALLOW)
    # Another team's key reads its own memory, where k1 does not exist.
    refused(
        call("GET", "/memory/k1", make_key(charlie)),
        404,
        error("Memory key not found: k1", "not_found", 404),
        ITEM_ALLOW,
    )
    long = "x" * (KEY_MAX_LENGTH + 1)
    refused(
        call("GET", f"/memory/{long}", key),
        400,
        error(
            f"Invalid request: key: Must be 1 to {KEY_MAX_LENGTH} characters long.",
            "validation_error",
            400,
            details={"key": [f"Must be 1 to {KEY_MAX_LENGTH} characters long."]},
        ),
        ITEM_ALLOW,
    )
    refused(
        call("GET", "/memory/k1", key, HTTP_ACCEPT="text/html"),
        406,
        error("Could not satisfy the request Accept header.", "not_acceptable", 406),
        ITEM_ALLOW,
    )
    refused(call("GET", "/memory/k1?format=xml", key), 404, error("Not found", "not_found", 404), ITEM_ALLOW)
    refused(
        call("PATCH", "/memory/k1", key, body={"value": 1}),
        405,
        error('Method "PATCH" not allowed.', "method_not_allowed", 405),
        ITEM_ALLOW,
    )


@override_settings(RATE_LIMIT_PER_MINUTE=2)
def test_get_item_rate_limited(key: str, item: MemoryItem) -> None:
    assert [call("GET", "/memory/k1", key).status for _ in range(2)] == [200, 200]
    answer = call("GET", "/memory/k1", key)
    # The window of frozen_rate_window's clock ends 30 s later.
    assert (answer.status, answer.content) == (
        429,
        error("Too many requests", "rate_limited", 429, retry_after=30),
    )
    assert answer.view_headers() == [
        ("Content-Type", "application/json"),
        ("Retry-After", "30"),
        ("Allow", ITEM_ALLOW),
    ]


def test_get_item_on_a_public_surface(
    alice: Tenant, charlie: Tenant, item: MemoryItem, make_key: Callable[..., str]
) -> None:
    tenant_public_scopes_set(tenant=alice, scopes=["memory.read"])
    answer = call("GET", f"/t/{alice.slug}/memory/k1")
    assert (answer.status, answer.content) == (200, item_body(item))
    assert answer.view_headers() == [("Content-Type", "application/json"), ("Allow", ITEM_ALLOW)]
    # Narrowed by X-SLOP-Scope like a key.
    refused(
        call("GET", f"/t/{alice.slug}/memory/k1", HTTP_X_SLOP_SCOPE="memory.x.read"),
        403,
        error(
            "Scope violation: memory.k1.read requires explicit permission",
            "scope_violation",
            403,
            permitted=False,
            required_scope="memory.k1.read",
        ),
        ITEM_ALLOW,
    )
    refused(
        call("GET", f"/t/{charlie.slug}/memory/k1"),
        401,
        error(
            f"No public surface at /t/{charlie.slug}/: send 'Authorization: Bearer <api key>'",
            "unauthenticated",
            401,
        ),
        ITEM_ALLOW,
        www=True,
    )
    refused(
        call("GET", f"/t/{alice.slug}/memory/k1", make_key(charlie)),
        401,
        error(f"This credential is not one of tenant {alice.slug!r}'s", "unauthenticated", 401),
        ITEM_ALLOW,
        www=True,
    )


# --- POST /memory --------------------------------------------------------------------------------


def test_post_memory(alice: Tenant, key: str) -> None:
    answer = call("POST", "/memory", key, body={"key": "k2", "value": {"a": 1}})
    assert (answer.status, answer.content) == (200, b'{"status":"stored"}')
    assert answer.view_headers() == [("Content-Type", "application/json"), ("Allow", COLLECTION_ALLOW)]
    again = call("POST", "/memory", key, body={"key": "k2", "value": [2]})
    assert (again.status, again.content, again.headers) == (200, answer.content, answer.headers)
    assert MemoryItem.objects.for_tenant(alice).get(key="k2").value == [2]


def test_post_memory_refusals(alice: Tenant, key: str, make_key: Callable[..., str]) -> None:
    missing = "Missing API key: send 'Authorization: Bearer <api key>' or 'X-API-Key'"
    refused(
        call("POST", "/memory", body={"key": "k", "value": 1}),
        401,
        error(missing, "unauthenticated", 401),
        COLLECTION_ALLOW,
        www=True,
    )
    refused(
        call("POST", "/memory", make_key(alice, "memory.a.write"), body={"key": "k", "value": 1}),
        403,
        error(
            "Scope violation: memory.k.write requires explicit permission",
            "scope_violation",
            403,
            permitted=False,
            required_scope="memory.k.write",
        ),
        COLLECTION_ALLOW,
    )
    refused(
        call("POST", "/memory", key, body=b'{"key": '),
        400,
        error(
            "Malformed request body: JSON parse error - Expecting value: line 1 column 9 (char 8)",
            "invalid_request",
            400,
        ),
        COLLECTION_ALLOW,
    )
    refused(
        call("POST", "/memory", key, body=[1]),
        400,
        error("The request body must be a JSON object, not list", "invalid_request", 400),
        COLLECTION_ALLOW,
    )
    refused(
        call("POST", "/memory", key, body={"value": 1}),
        400,
        error(
            "Invalid request: key: Must be a string.",
            "validation_error",
            400,
            details={"key": ["Must be a string."]},
        ),
        COLLECTION_ALLOW,
    )
    null = call("POST", "/memory", key, body={"key": "k", "value": None})
    assert (null.status, null.json()["code"]) == (400, "validation_error")
    text = call("POST", "/memory", key, body="key=k", CONTENT_TYPE="text/plain")
    assert (text.status, text.json()["code"]) == (415, "unsupported_media_type")
    with override_settings(SLOP_MEMORY_MAX_VALUE_BYTES=10):
        big = call("POST", "/memory", key, body={"key": "k", "value": "x" * 20})
    refused(
        big,
        413,
        error(
            "The value is 22 bytes; a memory value may be at most 10 bytes",
            "payload_too_large",
            413,
            limit_bytes=10,
        ),
        COLLECTION_ALLOW,
    )
    assert not MemoryItem.objects.for_tenant(alice).exists()  # a refused write stores nothing


@override_settings(RATE_LIMIT_PER_MINUTE=1)
def test_post_memory_rate_limited(alice: Tenant, key: str) -> None:
    assert call("POST", "/memory", key, body={"key": "a", "value": 1}).status == 200
    answer = call("POST", "/memory", key, body={"key": "b", "value": 1})
    assert (answer.status, answer.content) == (
        429,
        error("Too many requests", "rate_limited", 429, retry_after=30),
    )
    assert answer.view_headers() == [
        ("Content-Type", "application/json"),
        ("Retry-After", "30"),
        ("Allow", COLLECTION_ALLOW),
    ]
    assert not MemoryItem.objects.for_tenant(alice).filter(key="b").exists()


# --- GET /info -----------------------------------------------------------------------------------


def test_info_with_a_key(alice: Tenant, make_key: Callable[..., str]) -> None:
    anonymous = call("GET", "/info").json()
    answer = call("GET", "/info", make_key(alice, ["memory.read", "tools.*"]))
    assert answer.status == 200
    assert answer.view_headers() == [("Content-Type", "application/json"), ("Allow", INFO_ALLOW)]
    body = answer.json()
    assert list(body) == [
        "name",
        "version",
        "description",
        "endpoints",
        "capabilities",
        "creator",
        "links",
        "tenant",
        "scopes",
        "payments",  # each app's details, in INSTALLED_APPS order
        "tools",
        "models",
        "agents",
    ]
    assert {
        name: body[name] for name in ("name", "version", "description", "endpoints", "creator", "links")
    } == {
        name: anonymous[name] for name in ("name", "version", "description", "endpoints", "creator", "links")
    }
    assert body["tenant"] == {"slug": alice.slug, "name": alice.name}
    assert body["payments"] == {"configured": False}
    assert body["agents"] == []
    # The compact rendering, as DRF's renderer writes it.
    assert answer.content == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    # X-SLOP-Scope narrows the scopes it reports and the tools the caller may use.
    narrowed = call(
        "GET", "/info", make_key(alice, ["memory.read", "tools.*"]), HTTP_X_SLOP_SCOPE="memory.read"
    )
    assert body["tools"] != [] and narrowed.json()["tools"] == []
    assert narrowed.json()["scopes"] != body["scopes"]
    assert {name: value for name, value in narrowed.json().items() if name not in ("scopes", "tools")} == {
        name: value for name, value in body.items() if name not in ("scopes", "tools")
    }


def test_info_refusals(alice: Tenant, key: str) -> None:
    invalid = error("Invalid API key", "unauthenticated", 401)
    refused(call("GET", "/info", "not-a-key"), 401, invalid, INFO_ALLOW, www=True)
    refused(
        call("GET", "/info", key, HTTP_X_SLOP_SCOPE="weather.read"),
        400,
        error(
            "Malformed X-SLOP-Scope header: Invalid scope 'weather.read': unknown area 'weather' "
            "(one of agents, billing, chat, memory, pay, resources, tools, usage, or *)",
            "invalid_scope",
            400,
            scope="weather.read",
        ),
        INFO_ALLOW,
    )
    refused(
        call("GET", "/info", key, HTTP_ACCEPT="text/html"),
        406,
        error("Could not satisfy the request Accept header.", "not_acceptable", 406),
        INFO_ALLOW,
    )


@override_settings(RATE_LIMIT_PER_MINUTE=1)
def test_info_rate_limited(key: str) -> None:
    assert call("GET", "/info", key).status == 200
    answer = call("GET", "/info", key)
    assert (answer.status, answer.header("Retry-After")) == (429, "30")


def test_info_on_a_public_surface(alice: Tenant) -> None:
    tenant_public_scopes_set(tenant=alice, scopes=["memory.read"])
    answer = call("GET", f"/t/{alice.slug}/info")
    assert answer.status == 200
    body = answer.json()
    assert body["public_surface"] == {
        "base_url": f"/t/{alice.slug}",
        "scopes": ["memory.read"],
        "rate_limit_per_minute": settings.ANON_RATE_LIMIT_PER_MINUTE,
    }
    assert list(body)[7:10] == ["tenant", "scopes", "public_surface"]


# --- the direct route against Django's --------------------------------------------------------


def answered_alike(method: str, path: str, key: str | None = None, body: Any = None, **headers: str) -> str:
    """The request served by its direct route (or, via "loop", its loop route if it does not hand
    it on), then by Django: the same status, headers and body. Which served it: "loop", "direct"."""
    way = VIA[0]
    if way == "loop" and method == "GET":
        call(method, path, key, body, **headers)  # this process learns the key, as after any use
    SERVED_DIRECTLY.clear()
    SERVED_ON_LOOP.clear()
    served = call(method, path, key, body, **headers)
    assert [f"{method} {path}"] == SERVED_ON_LOOP + SERVED_DIRECTLY
    VIA[0] = "django"
    try:
        django = call(method, path, key, body, **headers)
    finally:
        VIA[0] = way
    assert (served.status, served.headers, served.content) == (django.status, django.headers, django.content)
    return "loop" if SERVED_ON_LOOP else "direct"


class TestDirectRoute:
    """The requests apps/memory/direct.py takes, against Django's answers to the same: through the
    direct routes, and through the loop routes first."""

    @pytest.fixture(params=["direct", "loop"])
    def via(self, request: pytest.FixtureRequest) -> Iterator[str]:  # (not the module's)
        VIA[0] = request.param
        SERVED_DIRECTLY.clear()
        SERVED_ON_LOOP.clear()
        yield request.param
        VIA[0] = "django"

    def test_the_direct_route_answers_as_django_does(
        self,
        alice: Tenant,
        charlie: Tenant,
        key: str,
        item: MemoryItem,
        make_key: Callable[..., str],
        via: str,
    ) -> None:
        memory_item_store(tenant=alice, key="big", value={"n": 2**70})
        revoked = api_key_create(tenant=alice, scopes="*")
        api_key_revoke(prefix=revoked.api_key.prefix)
        requests: list[tuple[str, dict[str, str]]] = [
            ("/memory/k1", {"HTTP_AUTHORIZATION": f"Bearer {key}"}),
            ("/memory/k1", {"HTTP_X_API_KEY": key, "HTTP_ACCEPT": "*/*", "HTTP_X_SLOP_USER": "u-1"}),
            ("/memory/k1", {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_ACCEPT": "application/json"}),
            ("/memory/big", {"HTTP_AUTHORIZATION": f"Bearer {key}"}),
            ("/memory/absent", {"HTTP_AUTHORIZATION": f"Bearer {key}"}),
            ("/memory/k1", {"HTTP_AUTHORIZATION": f"Bearer {make_key(charlie)}"}),
            ("/memory/k1", {"HTTP_AUTHORIZATION": f"Bearer {make_key(alice, 'memory.other.read')}"}),
            ("/memory/k1", {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_X_SLOP_SCOPE": "weather.read"}),
            ("/memory/k1", {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_X_SLOP_USER": "u" * 201}),
            ("/memory/k1", {"HTTP_AUTHORIZATION": f"Bearer {revoked.plaintext}"}),
            ("/memory/k1", {"HTTP_AUTHORIZATION": "Basic abc"}),
            ("/memory/k1", {"HTTP_X_API_KEY": "not-a-key"}),
            ("/memory/a%00b", {"HTTP_AUTHORIZATION": f"Bearer {key}"}),
            ("/memory/" + "x" * (KEY_MAX_LENGTH + 1), {"HTTP_AUTHORIZATION": f"Bearer {key}"}),
            ("/memory/thread:t1/notes", {"HTTP_AUTHORIZATION": f"Bearer {key}"}),
            ("/info", {"HTTP_AUTHORIZATION": f"Bearer {key}"}),
            ("/info", {"HTTP_X_API_KEY": make_key(alice, "memory.read"), "HTTP_X_SLOP_USER": "u-1"}),
            ("/info", {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_X_SLOP_SCOPE": "memory.user.read"}),
            ("/info", {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_X_SLOP_SCOPE": "weather.read"}),
            ("/info", {"HTTP_AUTHORIZATION": f"Bearer {revoked.plaintext}"}),
            ("/info", {"HTTP_AUTHORIZATION": f"Bearer {make_key(charlie)}"}),
        ]
        served = [(path, answered_alike("GET", path, **headers)) for path, headers in requests]
        if via == "loop":  # all but what the input rule refuses
            assert [path for path, way in served if way == "direct"] == ["/memory/a%00b"]

    def test_the_direct_write_answers_as_django_does(
        self, alice: Tenant, key: str, make_key: Callable[..., str], via: str, noted: None
    ) -> None:
        narrow = make_key(alice, "memory.a.write")
        bodies: list[tuple[str, bytes]] = [
            (key, b'{"key": "k2", "value": {"a": 1}}'),
            (key, b'{"key": "k2", "value": [2]}'),  # an overwrite
            (key, b'{"key": "k2", "value": [2]}'),  # again: its embedding is held now
            (narrow, b'{"key": "k", "value": 1}'),
            (key, b'{"key": '),
            (key, b"[1]"),
            (key, b'{"value": 1}'),
            (key, b'{"key": "k", "value": null}'),
            (key, b'{"key": "k", "value": "a\\u0000b"}'),
            (key, b'{"key": "k", "value": NaN}'),
            (key, b'{"key": "k", "value": 1, "extra": true}'),
            (key, b'{"key": "' + b"x" * (KEY_MAX_LENGTH + 1) + b'", "value": 1}'),
            (key, b"\xff"),
        ]
        ways = [answered_alike("POST", "/memory", sent_key, body=body) for sent_key, body in bodies]
        assert MemoryItem.objects.for_tenant(alice).get(key="k2").value == [2]
        if via == "loop":
            # On the thread: a new key (the plan's cap), a changed text not embedded in this
            # process yet (k2's [2] the first time; k's 1, a new key too), an API key's first use.
            # The rest on the loop: k2's [2] again (its text unchanged), and every refusal.
            assert [index for index, way in enumerate(ways) if way == "direct"] == [0, 1, 3, 10]

    def test_the_direct_route_takes_only_what_json_clients_send(
        self, key: str, item: MemoryItem, via: str
    ) -> None:
        auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
        for path, headers in [
            ("/memory/k1?format=json", auth),
            ("/memory/k1", {**auth, "HTTP_ACCEPT": "text/html"}),
            ("/memory/k1", {**auth, "HTTP_ACCEPT": "application/json; indent=2"}),
            ("/memory/k1", {}),  # no key: a public surface may answer
            ("/memory/k1", {"HTTP_X_API_KEY": "  "}),
            ("/memory/query", auth),  # a view of its own
            ("/t/alice/memory/k1", auth),
            ("/info", {}),  # anonymous
            ("/info?x=1", auth),
            ("/info/", auth),
        ]:
            call("GET", path, **headers)
        call("HEAD", "/memory/k1", key)
        call("POST", "/memory", body={"key": "k", "value": 1})  # no key
        call("POST", "/memory", key, body="key=k", CONTENT_TYPE="text/plain")
        call("POST", "/memory", key, body=b"{}", CONTENT_TYPE="application/json; charset=utf-8")
        call("POST", "/memory?x=1", key, body={"key": "k", "value": 1})
        assert SERVED_DIRECTLY == SERVED_ON_LOOP == []

    def test_a_direct_request_is_counted_and_logged_as_the_route(
        self, alice: Tenant, key: str, item: MemoryItem, via: str
    ) -> None:
        from apps.core.observability import metrics
        from apps.core.observability.logs import JsonFormatter

        def served() -> float:
            value = metrics.HTTP_REQUESTS.labels("GET", "memory/<path:key>", "200")._value.get()
            return float(value)

        call("GET", "/memory/k1", key)  # (the loop route knows the key from then on)
        SERVED_DIRECTLY.clear()
        before = served()
        written = io.StringIO()
        handler = logging.StreamHandler(written)
        handler.setFormatter(JsonFormatter())
        request_log = logging.getLogger("slop.request")
        request_log.addHandler(handler)
        level = request_log.level
        request_log.setLevel("INFO")
        try:
            call("GET", "/memory/k1", key, HTTP_X_FORWARDED_FOR="203.0.113.9")
        finally:
            request_log.removeHandler(handler)
            request_log.setLevel(level)
        assert (SERVED_ON_LOOP if via == "loop" else SERVED_DIRECTLY) == ["GET /memory/k1"]
        assert served() == before + 1
        (line,) = [json.loads(text) for text in written.getvalue().splitlines()]
        assert {name: line[name] for name in ("route", "status", "path", "method", "client")} == {
            "route": "memory/<path:key>",
            "status": 200,
            "path": "/memory/k1",
            "method": "GET",
            "client": "127.0.0.1",  # X-Forwarded-For from a peer that is no trusted proxy: ignored
        }
        key_prefix = ApiKey.objects.for_tenant(alice).get().prefix
        assert (line["request_id"], line["tenant_id"], line["key_prefix"]) == (
            REQUEST_ID,
            alice.pk,
            key_prefix,
        )


@pytest.fixture
def noted(django_capture_on_commit_callbacks: Callable[..., Any]) -> Iterator[None]:
    """This process has noted the model its memory is embedded with (apps.core.embeddings.usage),
    as a serving process has after its first write; the test's transaction never commits it."""
    with django_capture_on_commit_callbacks(execute=True):
        note_embedded("memory", embedding_model_id())
    yield
    forget_noted()


class TestLoopRoute:
    """What the loop route hands on to the thread path, and what it answers itself."""

    @pytest.fixture(autouse=True)
    def via(self) -> Iterator[str]:  # (not the module's)
        VIA[0] = "loop"
        SERVED_DIRECTLY.clear()
        SERVED_ON_LOOP.clear()
        yield "loop"
        VIA[0] = "django"

    def served(self) -> list[str]:
        ways = ["loop"] * len(SERVED_ON_LOOP) + ["direct"] * len(SERVED_DIRECTLY)
        SERVED_ON_LOOP.clear()
        SERVED_DIRECTLY.clear()
        return ways

    def test_a_key_is_looked_up_and_its_use_recorded_off_the_loop(
        self, alice: Tenant, key: str, item: MemoryItem
    ) -> None:
        record = ApiKey.objects.for_tenant(alice).get()
        assert record.last_used_at is None
        assert call("GET", "/memory/k1", key).status == 200
        assert self.served() == ["direct"]  # not cached here yet: the thread reads it
        ApiKey.objects.for_tenant(alice).update(last_used_at=None)
        assert call("GET", "/memory/k1", key).status == 200
        assert self.served() == ["loop"]
        # Its use is recorded once a minute (API_KEY_TOUCH_SECONDS): by the thread path.
        assert ApiKey.objects.for_tenant(alice).get().last_used_at is None
        from apps.tenants import authentication

        authentication._last_touch.clear()
        assert call("GET", "/memory/k1", key).status == 200
        assert self.served() == ["direct"]
        assert ApiKey.objects.for_tenant(alice).get().last_used_at is not None
        assert call("GET", "/memory/k1", key).status == 200
        assert self.served() == ["loop"]

    def test_a_revoked_key_is_refused_on_the_loop_once_known(
        self, alice: Tenant, key: str, item: MemoryItem
    ) -> None:
        call("GET", "/memory/k1", key)
        self.served()
        api_key_revoke(prefix=ApiKey.objects.for_tenant(alice).get().prefix)
        first = call("GET", "/memory/k1", key)  # dropped from this process's cache: read again
        assert first.status == 401
        assert self.served() == ["direct"]
        again = call("GET", "/memory/k1", key)
        assert (again.status, again.content) == (401, first.content)
        assert self.served() == ["loop"]

    def test_another_tenants_key_reads_nothing_on_the_loop(
        self, charlie: Tenant, make_key: Callable[..., str], item: MemoryItem
    ) -> None:
        other = make_key(charlie)
        call("GET", "/memory/k1", other)
        self.served()
        answer = call("GET", "/memory/k1", other)
        assert self.served() == ["loop"]
        refused(answer, 404, error("Memory key not found: k1", "not_found", 404), ITEM_ALLOW)

    @override_settings(RATE_LIMIT_PER_MINUTE=3)
    def test_the_rate_limit_counts_both_paths_alike(self, key: str, item: MemoryItem) -> None:
        statuses = [call("GET", "/memory/k1", key).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert self.served() == ["loop", "loop", "loop", "direct"]  # (listed by path)

    @override_settings(RATE_LIMIT_PER_MINUTE=4)
    def test_a_write_is_stored_on_the_loop_once_its_embedding_is_held(
        self, alice: Tenant, key: str, noted: None
    ) -> None:
        def post(value: Any) -> int:
            return call("POST", "/memory", key, body={"key": "k2", "value": value}).status

        assert post(1) == 200
        assert self.served() == ["direct"]  # a new key: the thread path checks the plan's cap
        assert post(1) == 200
        assert self.served() == ["loop"]  # an overwrite, its embedding held here
        assert post(2) == 200
        assert self.served() == ["direct"]  # a new value is embedded on a thread
        stored = MemoryItem.objects.for_tenant(alice).get(key="k2")
        assert stored.value == 2
        assert post(1) == 200
        assert self.served() == ["loop"]
        stored.refresh_from_db()
        assert stored.value == 1
        assert stored.embedding_text == "k2: 1"
        # Four writes, each counted once, by whichever path answered it.
        assert post(1) == 429
        assert self.served() == ["loop"]

    @override_settings(RATE_LIMIT_PER_MINUTE=4)
    def test_a_new_key_counted_on_the_loop_is_uncounted_when_handed_on(
        self, alice: Tenant, key: str, noted: None
    ) -> None:
        def post() -> int:
            return call("POST", "/memory", key, body={"key": "k1", "value": 1}).status

        assert [post(), post()] == [200, 200]  # the key and the text, known here from then on
        assert self.served() == ["loop", "direct"]  # (listed by path)
        MemoryItem.objects.for_tenant(alice).filter(key="k1").delete()
        assert post() == 200  # counted on the loop, found new: the thread path's, counted once
        assert self.served() == ["direct"]
        assert MemoryItem.objects.for_tenant(alice).get(key="k1").value == 1
        assert [post(), post()] == [200, 429]  # the fourth write is within the limit, not the fifth
        assert self.served() == ["loop", "loop"]

    def test_with_tracing_on_the_loop_answers_and_records_the_server_span_the_thread_path_would(
        self, alice: Tenant, key: str, item: MemoryItem
    ) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from apps.core.observability import tracing

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracing.install(provider)
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        parent = f"00-{trace_id}-00f067aa0ba902b7-01"
        try:
            assert call("GET", "/memory/k1", key, HTTP_TRACEPARENT=parent).status == 200
            assert self.served() == ["direct"]  # the key not cached yet: handed on
            handed_on = exporter.get_finished_spans()
            exporter.clear()
            assert call("GET", "/memory/k1", key, HTTP_TRACEPARENT=parent).status == 200
            assert call("GET", "/memory/absent", key).status == 404
            assert self.served() == ["loop", "loop"]
            on_loop = exporter.get_finished_spans()
        finally:
            tracing.uninstall()
            provider.shutdown()
        # One server span a request, the loop's like the thread path's; the dropped one unsent.
        assert [span.name for span in handed_on] == ["GET memory/<path:key>"]
        assert [span.name for span in on_loop] == ["GET memory/<path:key>", "GET memory/<path:key>"]
        for thread_span, loop_span in ((handed_on[0], on_loop[0]),):
            assert dict(loop_span.attributes) == dict(thread_span.attributes)
            assert loop_span.kind == thread_span.kind
            assert f"{loop_span.context.trace_id:032x}" == trace_id  # the incoming traceparent
            assert loop_span.parent is not None and loop_span.parent.span_id == 0x00F067AA0BA902B7
        assert on_loop[1].attributes["http.response.status_code"] == 404
        assert f"{on_loop[1].context.trace_id:032x}" != trace_id and on_loop[1].parent is None

    @override_settings(ALLOWED_HOSTS=["testserver"])
    def test_a_host_outside_allowed_hosts_is_refused_by_the_thread_path(
        self, key: str, item: MemoryItem
    ) -> None:
        call("GET", "/memory/k1", key)
        self.served()
        answer = call("GET", "/memory/k1", key, HTTP_HOST="evil.example")
        assert answer.status == 400
        assert self.served() == ["direct"]
