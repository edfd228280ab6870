"""The MCP door at /mcp (PROTOCOL.md §13): an ASGI application mounted in front of Django
(slop_platform/asgi.py MOUNTS), so what Django's middleware does for the SLOP routes it does itself,
with the platform's own functions:

- a request id (a sane X-Request-ID is kept) on the response and on every log line;
- the Host (ALLOWED_HOSTS) and the Origin: a browser page of a foreign origin gets a 403; requests
  without Origin (MCP hosts, SDKs) and the origins in SLOP_MCP_ALLOWED_ORIGINS pass;
- the API key (`Authorization: Bearer`, `X-API-Key`), narrowed by X-SLOP-Scope, X-SLOP-User for
  end-user usage and caps; no key or a bad one is a 401 whose WWW-Authenticate names the
  protected-resource metadata document (RFC 9728) served at
  /.well-known/oauth-protected-resource[/mcp];
- the API's rate limit per key (the same counters as the SLOP routes: one budget per key).

Refusals before MCP speaks are PROTOCOL.md's JSON errors; then the SDK's Streamable HTTP
transport serves the request, stateless (any web process can answer any request: no session lives
in one), answering 2026-07-28 requests and the handshake revisions (2024-11-05 .. 2025-11-25).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, TransportSecuritySettings
from rest_framework.exceptions import Throttled

from apps.core.client_address import client_address
from apps.core.errors import ApplicationError, internal_error, to_application_error
from apps.core.ids import new_id
from apps.core.middleware import VALID_REQUEST_ID, request_id_var
from apps.core.observability import context as log_context
from apps.core.observability import metrics
from apps.facades.mcp.catalog import offered_call, offered_tools
from apps.facades.mcp.server import PREPARED, PRINCIPAL, REQUEST_ID, Prepared, build_server, on_thread
from apps.tenants.authentication import (
    END_USER_HEADER,
    SCOPE_HEADER,
    Principal,
    check_path_tenant,
    principal_for,
    unauthenticated,
    with_end_user,
)
from apps.tenants.public import public_principal_for, split_public_path
from apps.tenants.throttling import RateLimit

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MCP_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource"
ROUTE = "mcp"  # the metrics' route label
request_logger = logging.getLogger("slop.request")


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    return headers


def _json(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, list, bytes]:
    data = orjson.dumps(body)
    pairs = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    pairs.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()
    )
    return status, pairs, data


async def _not_found(send: Send, path: str) -> None:
    error = ApplicationError(f"Not found: {path[:200]}", code="not_found", status=404)
    await _answer(send, _json(404, error.payload()))


async def _answer(send: Send, answer: tuple[int, list, bytes], *, head: bool = False) -> None:
    status, headers, body = answer
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def _base_url(scope: Scope, headers: dict[str, str]) -> str:
    scheme = str(scope.get("scheme") or "http")
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, value = proxy_header
        if headers.get(name.removeprefix("HTTP_").replace("_", "-").lower()) == value:
            scheme = "https"
    host = headers.get("host") or "localhost"
    return f"{scheme}://{host}"


def _surface(slug: str | None) -> str:
    """The path prefix of the surface a request came in on: "" or a tenant's public /t/<slug>."""
    return f"/t/{slug}" if slug is not None else ""


def metadata_url(scope: Scope, headers: dict[str, str], slug: str | None = None) -> str:
    # RFC 9728 §3.1: the well-known path with the resource's path inserted after it.
    return f"{_base_url(scope, headers)}{METADATA_PATH}{_surface(slug)}{MCP_PATH}"


def protected_resource_metadata(base_url: str, slug: str | None = None) -> dict[str, Any]:
    """RFC 9728's document. There is no OAuth authorization server: a team's API keys are issued
    in its console (or by `manage.py create_api_key`) and sent as a bearer token."""
    authentication = (
        "No OAuth authorization server: API keys are issued in the team console (/console/). "
        "Send one as 'Authorization: Bearer <api key>'; X-SLOP-Scope narrows its scopes."
    )
    if slug is not None:
        authentication += (
            f" Without a key, a request acts with the public scopes of tenant {slug!r}, if it has a"
            " public surface."
        )
    return {
        "resource": f"{base_url}{_surface(slug)}{MCP_PATH}",
        "authorization_servers": [],
        "bearer_methods_supported": ["header"],
        "resource_name": "SLOP Platform MCP server",
        "resource_documentation": f"{base_url}{_surface(slug)}/info",
        "slop_authentication": authentication,
    }


def allowed_origin(origin: str | None, host: str | None) -> bool:
    """No Origin (not a browser), a configured origin, or the server's own origin."""
    if origin is None:
        return True
    origin = origin.strip().rstrip("/")
    allowed = {item.rstrip("/") for item in settings.SLOP_MCP_ALLOWED_ORIGINS}
    if "*" in allowed or origin in allowed:
        return True
    return host is not None and origin in (f"http://{host}", f"https://{host}")


# What a browser page of an allowed origin may send and read (CORS): the MCP and SLOP headers.
_CORS_REQUEST_HEADERS = (
    "authorization, content-type, accept, last-event-id, mcp-protocol-version, mcp-session-id, "
    "mcp-method, mcp-name, x-api-key, x-slop-scope, x-slop-user, x-request-id"
)
_CORS_EXPOSED = "mcp-session-id, mcp-protocol-version, www-authenticate, x-request-id, retry-after"


def cors_headers(origin: str | None) -> list[tuple[bytes, bytes]]:
    """CORS answer headers for a browser origin that passed allowed_origin() (none without one)."""
    if origin is None:
        return []
    return [
        (b"access-control-allow-origin", origin.strip().encode("latin-1")),
        (b"access-control-expose-headers", _CORS_EXPOSED.encode()),
        (b"vary", b"Origin"),
    ]


def _host_allowed(host: str | None) -> bool:
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _ = split_domain_port(host or "")
    return bool(domain) and validate_host(domain, allowed)


@dataclass
class _ThrottleRequest:
    """What RateLimit reads of a DRF request: its principal and the client's address."""

    auth: Principal
    META: dict[str, str]


def authenticate(headers: dict[str, str], client: str, slug: str | None = None) -> Principal:
    """The caller, or the ApplicationError that refuses it (401, 400 for a malformed scope, 429).
    Under /t/<slug>/ (`slug`) a key must be that tenant's, and a request without one acts with the
    tenant's public scopes, as on every SLOP route of its public surface (apps/tenants/public.py);
    so does one at the root from loopback under `make run` (SLOP_DEMO_PUBLIC_LOOPBACK)."""
    scope_header = headers.get(SCOPE_HEADER.lower())
    principal = principal_for(headers.get("authorization"), headers.get("x-api-key"), scope_header)
    if principal is not None:
        check_path_tenant(principal, slug)
    else:
        address = client_address(client, headers.get("x-forwarded-for"))
        principal = public_principal_for(tenant_slug=slug, client=address, scope_header=scope_header)
    if principal is None:
        raise unauthenticated("Missing API key: send 'Authorization: Bearer <api key>'")
    principal = with_end_user(principal, headers.get(END_USER_HEADER.lower()))
    meta = {"REMOTE_ADDR": client}
    if "x-forwarded-for" in headers:
        meta["HTTP_X_FORWARDED_FOR"] = headers["x-forwarded-for"]
    limiter = RateLimit()
    if not limiter.allow_request(_ThrottleRequest(auth=principal, META=meta), None):  # type: ignore[arg-type]
        raise Throttled(wait=limiter.wait())
    return principal


def _asked(body: bytes | None) -> tuple[str | None, str | None]:
    """The JSON-RPC method of a tools/list or tools/call request, and for a tools/call the tool it
    names; (None, None) for anything else, which the SDK alone reads."""
    if body is None or b"tools/" not in body:
        return None, None
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None  # the SDK answers the parse error
    method = message.get("method") if isinstance(message, dict) else None
    if method == "tools/list":
        return method, None
    if method != "tools/call":
        return None, None
    params = message.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    return method, name if isinstance(name, str) else None


def _admit(
    headers: dict[str, str], client: str, slug: str | None, method: str | None, called: str | None
) -> tuple[Principal, Prepared | None]:
    """One worker-thread trip before the SDK serves the request: the caller, and what its request
    will need looked up (server.Prepared)."""
    principal = authenticate(headers, client, slug)
    if method == "tools/list":
        return principal, Prepared(offered=offered_tools(principal))
    if called is not None:
        schema, runs_long = offered_call(principal, called)
        return principal, Prepared(called=called, schema=schema, runs_long=runs_long)
    return principal, None


async def _buffered(headers: dict[str, str], receive: Receive) -> tuple[bytes | None, Receive]:
    """The request's body (None when it is too large to look at: the SDK refuses it with a 413),
    and a `receive` that hands it on as if it had not been read."""
    try:
        announced = int(headers.get("content-length", "0") or 0)
    except ValueError:
        announced = 0
    if announced > DEFAULT_MAX_REQUEST_BODY_SIZE:
        return None, receive
    chunks: list[bytes] = []
    size = 0
    more = True
    first: MutableMapping[str, Any] | None = None
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client left: hand that on
            first = message
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = bool(message.get("more_body"))
        if size > DEFAULT_MAX_REQUEST_BODY_SIZE:
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            if first is not None and not chunks:
                return first
            return {"type": "http.request", "body": body, "more_body": more}
        if first is not None:
            return first
        return await receive()

    return (None if more or first is not None else body), replay


class McpDoor:
    """The ASGI application under /mcp (and the metadata document under /.well-known/…)."""

    def __init__(self, server: Server[Any] | None = None) -> None:
        server = server or build_server()
        # Host and Origin are checked here, against the platform's settings.
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        # Two ways to answer: a request that asks for progress (`progressToken`) or a call that may
        # run long gets an SSE response, which carries the notifications and keep-alive pings
        # (_streamed); any other a plain JSON one, cheaper by a task and an event stream.
        self.manager = StreamableHTTPSessionManager(app=server, stateless=True, security_settings=security)
        self.json_manager = StreamableHTTPSessionManager(
            app=server, stateless=True, json_response=True, security_settings=security
        )
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def _run_manager(self, ready: asyncio.Event) -> None:
        async with self.manager.run(), self.json_manager.run():
            ready.set()
            await asyncio.Event().wait()  # for the life of the event loop

    async def _running(self) -> None:
        """The SDK's manager runs its request tasks in a task group of its own: started on the
        first request (the front's lifespan hooks are synchronous)."""
        if self._ready is None:
            self._ready = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run_manager(self._ready))
        await self._ready.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "MCP uses Streamable HTTP"})
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        headers = _headers(scope)
        # /t/<slug>/mcp: the door on a tenant's public surface (the front mounts it there too).
        public = split_public_path(str(scope["path"]))
        slug, path = public if public is not None else (None, str(scope["path"]))
        incoming = headers.get("x-request-id", "")
        request_id = incoming if VALID_REQUEST_ID.match(incoming) else new_id("req")
        status = 500

        async def send_tagged(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                tagged = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                tagged.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": tagged}
            await send(message)

        origin = headers.get("origin")
        on_mcp = not path.startswith(METADATA_PATH)  # the document has its own CORS
        cors = cors_headers(origin) if on_mcp and allowed_origin(origin, headers.get("host")) else []

        async def send_cors(message: MutableMapping[str, Any]) -> None:
            if cors and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send_tagged(message)

        token = request_id_var.set(request_id)
        bound = log_context.bind(request_id=request_id)
        try:
            await self._serve(scope, receive, send_cors, headers, request_id, path, slug)
        finally:
            log_context.unbind(bound)
            request_id_var.reset(token)
            elapsed = time.perf_counter() - started
            method = str(scope.get("method", ""))
            if getattr(settings, "SLOP_METRICS", True):
                metrics.HTTP_REQUESTS.labels(method, ROUTE, str(status)).inc()
                metrics.HTTP_DURATION.labels(method, ROUTE).observe(elapsed)
            if getattr(settings, "SLOP_REQUEST_LOG", True):
                request_logger.info(
                    "%s %s %s",
                    method,
                    ROUTE,
                    status,
                    extra={
                        "method": method,
                        "route": ROUTE,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                    },
                )

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        request_id: str,
        path: str,
        slug: str | None,
    ) -> None:
        if path.startswith(METADATA_PATH) and slug is None:  # at the root only, as RFC 9728 puts it
            await self._metadata(scope, send, headers, path)
            return
        if path.rstrip("/") != MCP_PATH:
            await _not_found(send, str(scope["path"]))
            return
        if not _host_allowed(headers.get("host")):
            host = (headers.get("host") or "")[:200]
            error = ApplicationError(
                f"This server does not answer to the Host header {host!r} (ALLOWED_HOSTS)",
                code="invalid_request",
            )
            await _answer(send, _json(400, error.payload()))
            return
        if not allowed_origin(headers.get("origin"), headers.get("host")):
            error = ApplicationError(
                f"Origin {headers['origin'][:200]!r} may not use this MCP server (SLOP_MCP_ALLOWED_ORIGINS)",
                code="forbidden_origin",
                status=403,
            )
            await _answer(send, _json(403, error.payload()))
            return
        if scope.get("method") == "OPTIONS":  # a browser's preflight, from an allowed origin
            preflight = [  # the CORS origin headers are added by __call__
                (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
                (b"access-control-allow-headers", _CORS_REQUEST_HEADERS.encode()),
                (b"access-control-max-age", b"600"),
            ]
            await _answer(send, (204, preflight, b""))
            return
        client = (scope.get("client") or ("", 0))[0] or ""
        body, replay = await _buffered(headers, receive)
        method, called = _asked(body)
        try:
            principal, prepared = await on_thread(_admit)(headers, client, slug, method, called)
        except Exception as exc:
            error = to_application_error(exc) or internal_error(None, exc)
            extra = dict(error.headers)
            if error.status == 401:
                extra["WWW-Authenticate"] = (
                    f'Bearer resource_metadata="{metadata_url(scope, headers, slug)}"'
                    + (
                        ', error="invalid_token"'
                        if headers.get("authorization") or headers.get("x-api-key")
                        else ""
                    )
                )
            await _answer(send, _json(error.status, error.payload(), extra))
            return
        token = log_context.bind(**log_context.principal_fields(principal))
        try:
            await self._running()
            inner = dict(scope)
            inner[PRINCIPAL] = principal
            inner[REQUEST_ID] = request_id
            manager = self.manager if self._streamed(headers, body, prepared) else self.json_manager
            lookups = PREPARED.set(prepared)
            try:
                await manager.handle_request(inner, replay, send)
            finally:
                PREPARED.reset(lookups)
        finally:
            log_context.unbind(token)

    @staticmethod
    def _streamed(headers: dict[str, str], body: bytes | None, prepared: Prepared | None) -> bool:
        """Whether the SDK's event-stream manager answers (else the JSON one, cheaper by a task and a
        stream): for a request that asks for progress, and for a call that may run long (a job, an
        agent) even when it asks for none, from a client that accepts a stream. A 2026-07-28 stream
        is committed only once the call has run 15 s without an answer, and then carries the SDK's
        keep-alive comments every 15 s, so a proxy's idle timeout does not cut the call; a call that
        answers sooner still gets plain JSON."""
        if body is None or b'"progressToken"' in body:
            return True
        return (
            prepared is not None and prepared.runs_long and "text/event-stream" in headers.get("accept", "")
        )

    async def _metadata(self, scope: Scope, send: Send, headers: dict[str, str], path: str) -> None:
        resource = path.rstrip("/").removeprefix(METADATA_PATH)
        public = split_public_path(resource)  # /t/<slug>/mcp: the door on a public surface
        slug = public[0] if public is not None and public[1] == MCP_PATH else None
        if resource not in ("", MCP_PATH) and slug is None:
            await _not_found(send, path)
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD", "OPTIONS"):
            error = ApplicationError(f"Method {method} not allowed", code="method_not_allowed", status=405)
            await _answer(send, _json(405, error.payload(), {"Allow": "GET, HEAD, OPTIONS"}))
            return
        document = protected_resource_metadata(_base_url(scope, headers), slug)
        # Public, the same for everyone: any page may read it (CORS), as OAuth clients in browsers do.
        cors = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=3600"}
        if method == "OPTIONS":
            await _answer(
                send, (204, [(b"access-control-allow-origin", b"*"), (b"allow", b"GET, HEAD, OPTIONS")], b"")
            )
            return
        await _answer(send, _json(200, document, cors), head=method == "HEAD")
