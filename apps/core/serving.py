"""The web process's front: one ASGI application that sends each request down the cheapest path.

Django serves a synchronous view fastest through its WSGI handler, on a thread, with no event loop
in between: measured on this machine (README, "Performance"), Django's ASGI path costs several
times more per request, since each sync view under ASGI hops onto a thread and back. Streams
(SSE/NDJSON chat, job streams) and WebSocket need the event loop: they hold a connection for
minutes while waiting on the channel layer, which a thread per stream could not afford at
thousands of streams.

So the front routes, per request, by path, before any Django code runs:

- `mounts`: whole ASGI applications under a path prefix (an MCP server at /mcp, say), first, below
  a `/t/<slug>` public surface prefix too (the application gets the whole path and reads the slug);
- `websocket` scopes: Channels' router;
- HTTP requests to a streaming route (`streaming` patterns, matched below a `/t/<slug>` public
  surface prefix too), or with a body of unannounced length (chunked; only the ASGI handler
  counts it): Django's ASGI handler (apps.core.asgi.SingleHopASGIHandler);
- `loop` routes: a request one of them accepts may be answered on the event loop, without a
  thread (the busiest requests, when this process can take every step without blocking; a body
  is read first, up to BUFFERED_BODY_BYTES); what it hands on goes down the paths below, its body
  given to them as it came;
- `direct` routes: a request one of them accepts (the busiest requests of a few routes, as JSON
  clients send them) goes to its WSGI application, on the same thread pool;
- every other HTTP request: Django's WSGI handler on a thread pool, through a2wsgi.

At the ASGI lifespan startup it runs `on_startup` (what only a serving process does: listening for
cache invalidations), and at its shutdown awaits `on_shutdown` (closing the event loop's
connections). It also refuses, in the PROTOCOL.md error format, requests whose headers exceed
`max_header_bytes` (431), which the HTTP server would otherwise pass on or cut with a bare status.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import orjson
from a2wsgi import WSGIMiddleware
from a2wsgi.wsgi import build_environ

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[Any]]  # Channels' and Django's are typed loosely
WSGIApp = Callable[..., Iterable[bytes]]

# /t/<slug>/<path> is the public surface of a tenant: the same routes below the prefix.
logger = logging.getLogger("slop.serving")
_PUBLIC_PREFIX = re.compile(r"^/t/[^/]+(?=/)")


def _error(status: int, code: str, message: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = orjson.dumps({"error": message, "code": code, "status": status})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return headers, body


# A body up to this size is read on the event loop before the WSGI call; a larger one (uploads)
# streams to the thread through a2wsgi, so it is never held whole in memory by the front.
BUFFERED_BODY_BYTES = 256 * 1024


class ThreadedWSGI:
    """A WSGI application on a thread pool, for requests whose body is small enough to read first
    and answers that are one piece (every JSON answer; HttpResponse, not a streaming response).

    One hop to a thread and one back per request: the request body is read on the event loop, the
    thread runs the handler and joins the response, the loop sends it. a2wsgi makes three more
    round trips between the thread and the loop for the same answer (the start, the body, its
    end, each waited for by the thread), which cost ~400 µs of CPU a request here and wake the
    loop thrice under the GIL (bench/request_cost.py; README, "Performance"). A streaming
    response (`response.streaming`: FileResponse, StreamingHttpResponse) is sent chunk by chunk
    from the thread as a2wsgi does; a body over BUFFERED_BODY_BYTES is streamed to the handler by a2wsgi."""

    def __init__(self, app: WSGIApp, *, threads: int, executor: ThreadPoolExecutor | None = None) -> None:
        self.app = app
        self.executor = executor or ThreadPoolExecutor(thread_name_prefix="WSGI", max_workers=threads)
        self.streaming = WSGIMiddleware(app, workers=threads)  # type: ignore[arg-type]
        self.streaming.executor = self.executor  # one pool of threads for both

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = _content_length(scope)
        if length is not None and length > BUFFERED_BODY_BYTES:
            await self._a2wsgi(scope, receive, send)
            return
        body = b""
        if length:
            chunks = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
        environ = build_environ(scope, io.BytesIO(body))  # type: ignore[arg-type]
        environ["wsgi.errors"] = sys.stderr
        loop = asyncio.get_running_loop()
        # The handler runs in its thread's own context, as under any threaded WSGI server, not in a
        # copy of the loop's: Django keeps its cache objects in an asgiref Local, which lives in a
        # context variable, so a fresh context per request built a new cache object per request:
        # a new Redis connection pool, connected (and authenticated) anew for the rate limiter's
        # one command, ~18 % of a GET /memory/:key's worker time (py-spy under wrk). Every
        # context variable a request sets is reset by whoever set it (request id, log context).
        call = functools.partial(self._call, cast(dict[str, Any], environ), loop, send)
        answer = await loop.run_in_executor(self.executor, call)
        if answer is not None:
            status, headers, content = answer
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})

    def _call(
        self, environ: dict[str, Any], loop: asyncio.AbstractEventLoop, send: Send
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """On a thread: the answer to send, or None when a streaming one was sent from here."""
        started: list[tuple[int, list[tuple[bytes, bytes]]]] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [(int(status.split(" ", 1)[0]), _encoded(headers))]
            return _no_write

        result = self.app(environ, start_response)
        try:
            if not getattr(result, "streaming", False):
                content = b"".join(result)
                return (*started[0], content)

            async def sending(message: dict[str, Any]) -> None:
                await send(message)  # granian's send() answers a future, not a coroutine

            def send_from_thread(message: dict[str, Any]) -> None:
                asyncio.run_coroutine_threadsafe(sending(message), loop).result()

            status, headers = started[0]
            send_from_thread({"type": "http.response.start", "status": status, "headers": headers})
            for chunk in result:
                if chunk:
                    send_from_thread({"type": "http.response.body", "body": chunk, "more_body": True})
            send_from_thread({"type": "http.response.body", "body": b""})
            return None
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()  # Django's request_finished: on this thread, whose connection it returns

    async def _a2wsgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        # a2wsgi hands receive() to asyncio.run_coroutine_threadsafe, which takes only a
        # coroutine; granian's receive() returns a future of its own.
        async def receive_coroutine() -> MutableMapping[str, Any]:
            return await receive()

        await self.streaming(scope, receive_coroutine, send)  # type: ignore[arg-type]


def _no_write(data: bytes) -> None:
    raise RuntimeError("the WSGI write() callable is not supported; return the body")


def _encoded(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [
        (name.strip().lower().encode("latin-1"), value.strip().encode("latin-1")) for name, value in headers
    ]


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class _ClientLeft(Exception):
    pass


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The request's body, if it announces one of at most BUFFERED_BODY_BYTES (b"" for none);
    None for a larger one (left unread). _ClientLeft if the client left while sending it."""
    length = _content_length(scope)
    if not length:
        return b""
    if length > BUFFERED_BODY_BYTES:
        return None
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientLeft
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` for a request whose body was read already: the body first, then the server's."""
    replayed = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


@dataclass(frozen=True)
class DirectRoute:
    """A WSGI application for the requests `accepts(scope)` says yes to, ahead of Django's
    handler (apps.core.asgi.DirectWSGIHandler: one route's view without URL resolution). `accepts`
    runs on the event loop for every plain request: a few comparisons of the scope, no I/O."""

    accepts: Callable[[Scope], bool]
    app: WSGIApp


@dataclass(frozen=True)
class LoopRoute:
    """Requests that `answer(scope, body)` may answer on the event loop itself, with no thread
    (apps.tenants.loop): the answer (status, headers, body), or None to send the request on to
    the thread path, having done nothing a second try would repeat. `accepts` is as DirectRoute's;
    a request a loop route hands on goes to the direct route that accepts it. The body is read
    before `answer` is called (b"" for a request without one); a request whose announced body is
    over BUFFERED_BODY_BYTES is not offered to the loop route."""

    accepts: Callable[[Scope], bool]
    answer: Callable[[Scope, bytes], Awaitable[tuple[int, list[tuple[bytes, bytes]], bytes] | None]]


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
        direct: Sequence[DirectRoute] = (),
        loop: Sequence[LoopRoute] = (),
        on_startup: Sequence[Callable[[], None]] = (),
        on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.on_startup = list(on_startup)
        self.on_shutdown = list(on_shutdown)
        wsgi_threads = ThreadedWSGI(wsgi, threads=threads)
        self.wsgi: ASGIApp = wsgi_threads
        # On the same threads (and the same database connections) as every other plain request.
        self.direct = [
            (route.accepts, ThreadedWSGI(route.app, threads=threads, executor=wsgi_threads.executor))
            for route in direct
        ]
        self.loop = list(loop)
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
        for accepts, app in self.direct:
            if accepts(scope):
                return app
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return self.wsgi
        for name, value in scope["headers"]:
            if name == b"content-length":
                return self.wsgi
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                return self.asgi_http
        return self.wsgi

    def _mounted(self, path: str) -> ASGIApp | None:
        path = _PUBLIC_PREFIX.sub("", path, count=1)
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
            for route in self.loop:
                if route.accepts(scope):
                    try:
                        body = await _read_body(scope, receive)
                    except _ClientLeft:
                        return
                    if body is None:
                        break  # too large to hold: the thread path streams it
                    answer = await route.answer(scope, body)
                    if answer is not None:
                        status, headers, content = answer
                        await send({"type": "http.response.start", "status": status, "headers": headers})
                        await send({"type": "http.response.body", "body": content})
                        return
                    receive = _replaying(body, receive)
                    break
            await self.route(scope)(scope, receive, send)

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
                for closing in self.on_shutdown:
                    try:
                        await closing()
                    except Exception:  # the next one still closes, and the process still ends
                        logger.warning("A shutdown step failed", exc_info=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
