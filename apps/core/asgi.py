"""Django's ASGI handler with the middleware chain run as WSGI runs it: in one hop to a thread.

Every middleware of this project is synchronous (Django's own run process_request and
process_response, which in async mode are a thread hop each). Django's ASGI handler builds the
chain for async: it hops into a thread for the sync middleware, the innermost middleware hops back
onto the event loop for the async inner handler, which hops into the thread again for the sync
view, and all the way back: three round trips where one does. Measured in process, the extra two
were ~1.3 ms of every request on this machine, a seventh of the time the platform adds to a
chat's first token.

This handler builds the sync chain (Django's WSGI path: middleware, URL resolution, view) and runs
it with one sync_to_async, in the thread-sensitive thread Django uses for sync code. Async views
(the tool-job stream) are still served: the sync chain calls them through async_to_sync, as
Django's sync handler does, and their streaming bodies are iterated on the event loop as before.

It also reads bodies sent without Content-Length (`Transfer-Encoding: chunked`): the server hands
the whole body over ASGI, but DRF and Django's form parsing take a missing Content-Length to mean
"no body", so such a request was parsed as empty. The handler counts what it received, keeps at
most the path's body limit (apps.core.middleware.body_refused's) and sets CONTENT_LENGTH to what arrived;
PlatformMiddleware then answers 413 past the limit.
"""

from __future__ import annotations

import contextvars
import tempfile
from collections.abc import Callable, Mapping
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import ResolverMatch

from apps.core.errors import ApplicationError, error_for_status, error_response
from apps.core.middleware import PlatformMiddleware, body_limit_for

_body_limit: contextvars.ContextVar[int] = contextvars.ContextVar("body_limit")
_body_received: contextvars.ContextVar[int] = contextvars.ContextVar("body_received", default=0)


class SingleHopASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        sync_chain = self._middleware_chain  # type: ignore[has-type]  # set by load_middleware, untyped
        self._middleware_chain = sync_to_async(sync_chain, thread_sensitive=True)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # read_body and create_request get no scope; the limit and the count travel beside them.
        limit_token = _body_limit.set(body_limit_for(str(scope.get("path", ""))))
        received_token = _body_received.set(0)
        try:
            await super().handle(scope, receive, send)
        finally:
            _body_received.reset(received_token)
            _body_limit.reset(limit_token)

    async def read_body(self, receive: Any) -> Any:
        """Django's read_body, keeping at most limit + 1 bytes (the rest is counted, not stored)."""
        limit = _body_limit.get(settings.MAX_BODY_BYTES)
        # Closed by the caller (handle), as in Django's own read_body.
        body_file = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
        )
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body_file.close()
                raise RequestAborted()
            chunk = message.get("body", b"")
            if received <= limit:
                body_file.write(chunk[: limit + 1 - received])
            received += len(chunk)
            if not message.get("more_body", False):
                break
        _body_received.set(received)
        body_file.seek(0)
        return body_file

    def create_request(
        self, scope: Mapping[str, Any], body_file: IO[bytes]
    ) -> tuple[ASGIRequest, None] | tuple[None, HttpResponseBase]:
        request, error = super().create_request(scope, body_file)
        if request is None:  # Django's plain-text 400 (a query string that is not UTF-8) or 413
            refused = (
                ApplicationError("The query string is not valid UTF-8", code="invalid_request")
                if error is not None and error.status_code == 400
                else ApplicationError("Request body is too large", code="payload_too_large", status=413)
            )
            return None, error_response(refused)
        received = _body_received.get()
        if received and ("CONTENT_LENGTH" not in request.META or received > _body_limit.get(0)):
            # What arrived, so DRF reads a chunked body, and PlatformMiddleware answers 413
            # (with the request id, like any other) for a body that was cut at the limit.
            request.META["CONTENT_LENGTH"] = str(received)
        return request, None

    def handle_uncaught_exception(self, request: Any, resolver: Any, exc_info: Any) -> HttpResponseBase:
        # Django's last resort answers a traceback as text/plain with DEBUG on; ours never does.
        try:
            return super().handle_uncaught_exception(request, resolver, exc_info)
        except Exception:
            return error_response(error_for_status(request, 500))


class JsonWSGIHandler(WSGIHandler):
    """Django's WSGI handler (the plain requests of apps.core.serving), whose last resort answers
    the PROTOCOL.md error rather than a traceback, like SingleHopASGIHandler."""

    def handle_uncaught_exception(self, request: Any, resolver: Any, exc_info: Any) -> HttpResponseBase:
        try:
            return super().handle_uncaught_exception(request, resolver, exc_info)  # type: ignore[misc]
        except Exception:
            return error_response(error_for_status(request, 500))


class DirectWSGIHandler(JsonWSGIHandler):
    """Django's WSGI handler for one route whose view is known before any URL is resolved: the
    platform middleware (PlatformMiddleware, its process_view and process_exception included)
    around `view`, with the signals, script prefix, response conversion and closing of Django's
    handler, and no URL resolution. apps.core.serving sends it the requests a `DirectRoute`
    accepts; `kwargs_of(path_info)` gives the view the URL captures the route pattern would.

    It serves a route's busiest request with the same steps a DRF view takes, written without
    DRF's dispatch (apps.tenants.direct); every other request of the route goes the usual way.
    """

    def __init__(
        self,
        view: Callable[..., HttpResponse],
        *,
        route: str,
        url_name: str,
        kwargs_of: Callable[[str], dict[str, Any]],
    ) -> None:
        # Not WSGIHandler.__init__: its load_middleware() builds the chain around URL resolution.
        self.view = view
        self.route = route
        self.url_name = url_name
        self.kwargs_of = kwargs_of
        self.platform = PlatformMiddleware(self._view)
        self._middleware_chain = self.platform

    def _view(self, request: HttpRequest) -> HttpResponse:
        kwargs = self.kwargs_of(request.path_info)
        request.resolver_match = ResolverMatch(
            self.view, (), kwargs, url_name=self.url_name, route=self.route
        )
        refused = self.platform.process_view(request, self.view, (), kwargs)
        if refused is not None:
            return refused
        try:
            return self.view(request, **kwargs)
        except Exception as exc:
            answer = self.platform.process_exception(request, exc)
            if answer is None:
                raise
            return answer
