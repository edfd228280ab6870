"""The web process's front: one ASGI application that sends each request down the cheapest path.

Django serves a synchronous view fastest through its WSGI handler, on a thread, with no event loop
in between: measured on this machine (README, "Performance"), Django's ASGI path costs several
times more per request, since each sync view under ASGI hops onto a thread and back. Streams
(SSE/NDJSON chat, job streams) and WebSocket need the event loop: they hold a connection for
minutes while waiting on the channel layer, which a thread per stream could not afford at
thousands of streams.

So the front routes, per request, by path, before any Django code runs:

- `mounts`: whole ASGI applications under a path prefix (an MCP server at /mcp, say), first;
- `websocket` scopes: Channels' router;
- HTTP requests to a streaming route (`streaming` patterns, matched below a `/t/<slug>` public
  surface prefix too), or with a body of unannounced length (chunked; only the ASGI handler
  counts it): Django's ASGI handler (apps.core.asgi.SingleHopASGIHandler);
- every other HTTP request: Django's WSGI handler on a thread pool, through a2wsgi.

At the ASGI lifespan startup it runs `on_startup` (what only a serving process does: listening for
cache invalidations). It also refuses, in the PROTOCOL.md error format, requests whose headers exceed
`max_header_bytes` (431), which the HTTP server would otherwise pass on or cut with a bare status.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any

import orjson
from a2wsgi import WSGIMiddleware

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[Any]]  # Channels' and Django's are typed loosely
WSGIApp = Callable[..., Iterable[bytes]]

# /t/<slug>/<path> is the public surface of a tenant: the same routes below the prefix.
_PUBLIC_PREFIX = re.compile(r"^/t/[^/]+(?=/)")


def _error(status: int, code: str, message: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = orjson.dumps({"error": message, "code": code, "status": status})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return headers, body


class ServingFront:
    """ASGI application: mounts, WebSocket, streams on ASGI; the rest on WSGI threads."""

    def __init__(
        self,
        *,
        wsgi: WSGIApp,
        asgi_http: ASGIApp,
        websocket: ASGIApp,
        streaming: Sequence[str],
        mounts: Sequence[tuple[str, ASGIApp]] = (),
        threads: int = 8,
        max_header_bytes: int = 16 * 1024,
        on_startup: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.on_startup = list(on_startup)
        self.wsgi: ASGIApp = WSGIMiddleware(wsgi, workers=threads)  # type: ignore[arg-type, assignment]
        self.asgi_http = asgi_http
        self.websocket = websocket
        self.streaming = re.compile("|".join(f"(?:{pattern})" for pattern in streaming) or "(?!)")
        self.mounts = [(prefix.rstrip("/"), app) for prefix, app in mounts]
        self.max_header_bytes = max_header_bytes

    def route(self, scope: Scope) -> ASGIApp:
        """The application that serves this HTTP scope (mounts aside)."""
        path = _PUBLIC_PREFIX.sub("", scope["path"], count=1)
        if self.streaming.match(path) or not scope.get("query_string", b"").isascii():
            # (a2wsgi decodes a query string as ASCII; the ASGI handler answers a JSON 400 or
            # serves the percent-decoded UTF-8 a server passed on raw.)
            return self.asgi_http
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return self.wsgi
        for name, value in scope["headers"]:
            if name == b"content-length":
                return self.wsgi
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                return self.asgi_http
        return self.wsgi

    def _mounted(self, path: str) -> ASGIApp | None:
        for prefix, app in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                return app
        return None

    def _header_bytes(self, scope: Scope) -> int:
        return len(scope.get("raw_path") or b"") + sum(len(n) + len(v) + 4 for n, v in scope["headers"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind not in ("http", "websocket"):
            raise ValueError(f"unsupported ASGI scope type {kind!r}")
        if self._header_bytes(scope) > self.max_header_bytes:
            await self._refuse_headers(kind, send)
            return
        mounted = self._mounted(scope["path"])
        if mounted is not None:
            await mounted(scope, receive, send)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)
        else:
            app = self.route(scope)
            if app is self.wsgi:
                # a2wsgi hands receive() to asyncio.run_coroutine_threadsafe, which takes only a
                # coroutine; granian's receive() returns a future of its own.
                async def receive_coroutine() -> MutableMapping[str, Any]:
                    return await receive()

                await app(scope, receive_coroutine, send)
            else:
                await app(scope, receive, send)

    async def _refuse_headers(self, kind: str, send: Send) -> None:
        message = f"Request headers are larger than {self.max_header_bytes} bytes"
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1009, "reason": message[:120]})
            return
        headers, body = _error(431, "headers_too_large", message)
        await send({"type": "http.response.start", "status": 431, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for hook in self.on_startup:
                    hook()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
