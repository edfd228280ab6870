"""A SlopView's request answered on the event loop: no thread, no Django request or handler, the
same steps and the same answer as apps.tenants.direct's (itself the view's, pinned to the byte by
tests/tenants/test_hot_endpoints.py through every path).

A thread hop and Django's handler were more than half of what a direct `GET /memory/:key` cost a
web process (py-spy; README, "Serving layout and performance"). A request whose every step this
process can take without a blocking call is answered here; any other is handed on (`None`) to the
thread path before it has done anything a second try would repeat:

1. the platform middleware's part: the Host against ALLOWED_HOSTS, the input rule for the URL's
   captures, the request id (a sane X-Request-ID kept), the figures (metrics and the request log
   line; with tracing on, its server span, opened here as the thread path's middleware opens it,
   and dropped unended when the request is handed on: the thread path's span is then its);
2. authentication by `principal_for` and `attach_to`, the functions DRF's calls. Run here, on the
   loop, they use no connection: a key this process has not cached, or whose last use is due to be
   written, reaches the database, which Django refuses on an event loop (SynchronousOnlyOperation):
   the request is handed on, untouched, and the thread path looks the key up. The route's
   `prepare` runs here too (a write's body validated; an answer made of cached snapshots);
3. the rate limit: the same counter (throttling.bucket_of), counted through asyncio Redis
   (throttling.count_on_loop), with the same fall back to in-process counters;
4. the view's declared access (`enforce`, reading the body the front read), then the route's
   handler, a coroutine that reads or writes through apps.core.loop_io. A handler that finds the
   request is the thread path's after all (HandOn: `POST /memory` of a new key, whose cap is
   checked in a transaction) has written nothing: the request is uncounted and handed on;
5. the answer rendered by the same functions (direct.json_answer's bytes, direct.error_answer for
   any failure), with the view's Allow header, the security headers SecurityMiddleware adds and the
   request id, in the order the thread path writes them.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpResponse
from django.http.request import split_domain_port, validate_host
from django.middleware.security import SecurityMiddleware
from django.utils.encoding import escape_uri_path
from rest_framework import exceptions as drf_exceptions

from apps.core.errors import ApplicationError
from apps.core.ids import new_id
from apps.core.middleware import VALID_REQUEST_ID, request_id_var
from apps.core.observability import context, metrics, tracing
from apps.core.observability.middleware import RequestFigures
from apps.core.serving import Scope
from apps.core.text import check_named_text
from apps.tenants import direct, throttling
from apps.tenants.access import Context, enforce
from apps.tenants.api import SlopView
from apps.tenants.authentication import SCOPE_HEADER, Principal, attach_to, principal_for

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
# handler(principal, target, prepared): the data to answer; `prepared`, what prepare() gave.
LoopHandler = Callable[[Principal, Any, Any], Awaitable[Any]]
Prepare = Callable[[Principal], Any]

logger = logging.getLogger("slop.serving")

_LOCAL_HOSTS = [".localhost", "127.0.0.1", "[::1]"]  # Django's ALLOWED_HOSTS when DEBUG leaves it empty


class Headers(dict[str, str]):
    """The request's headers by lowercase name (repeated ones joined by commas, as WSGI joins
    them); read by any case, as Django's request.headers is."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


class LoopRequest:
    """What the steps of a request read of a Django request (headers, META, path, method, what
    authentication attaches), made from its ASGI scope."""

    def __init__(self, scope: Scope) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.path_info = self.path
        headers = Headers()
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        self.headers = headers
        client = scope.get("client")
        meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
        meta["REMOTE_ADDR"] = client[0] if client else ""
        meta["REQUEST_METHOD"] = self.method
        meta["PATH_INFO"] = self.path
        self.META = meta
        self.scheme: str = scope.get("scheme", "http")
        self.request_id = "-"
        self.auth: Principal | None = None
        self.user: Principal | None = None

    def get_full_path(self) -> str:
        return escape_uri_path(self.path)  # a loop route takes no query string

    def is_secure(self) -> bool:
        """HttpRequest.is_secure: the scheme, or SECURE_PROXY_SSL_HEADER's word for it."""
        proxy_header = settings.SECURE_PROXY_SSL_HEADER
        if proxy_header:
            header, secure_value = proxy_header
            value = self.META.get(header)
            if value is not None:
                return str(value).split(",", 1)[0].strip() == secure_value
        return self.scheme == "https"

    def host_allowed(self) -> bool:
        """HttpRequest.get_host's check, for a request that names its Host."""
        host = self.headers.get("host")
        if not host:
            return False
        allowed = settings.ALLOWED_HOSTS or (_LOCAL_HOSTS if settings.DEBUG else [])
        domain, _port = split_domain_port(host)
        return bool(domain) and validate_host(domain, allowed)


class _Answered:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


@functools.cache
def _security_headers(secure: bool) -> tuple[tuple[str, str], ...]:
    """What SecurityMiddleware.process_response adds to a JSON answer (the settings are fixed
    once a process has started; tests that change them clear this)."""

    class _Request:
        def is_secure(self) -> bool:
            return secure

    response = HttpResponse(content_type="application/json")
    before = set(response.headers)
    SecurityMiddleware(lambda request: response).process_response(_Request(), response)  # type: ignore[arg-type]
    return tuple((name, value) for name, value in response.items() if name not in before)


_figures: list[RequestFigures] = []


def _request_figures() -> RequestFigures:
    if not _figures:
        _figures.append(RequestFigures())
    return _figures[0]


def takes_plain_requests() -> bool:
    """Whether this process answers on the loop at all: not with an HTTPS redirect or a forwarded
    Host to honour (Django's steps for them), nor with DJANGO_ALLOW_ASYNC_UNSAFE set (Django would
    then block the loop on its database instead of refusing, and the refusal is what hands a
    request to a thread)."""
    return not (
        settings.SECURE_SSL_REDIRECT
        or settings.USE_X_FORWARDED_HOST
        or os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    )


def check_view(view_class: type[SlopView]) -> None:
    """A loop route serves views whose throttle is the rate limit alone (what it counts)."""
    if list(view_class.throttle_classes) != [throttling.RateLimit]:
        raise ValueError(f"{view_class.__name__} has throttles a loop route does not run")


class HandOn(Exception):
    """Raised by a route's prepare() or handler: this request is the thread path's to answer
    (what it needs is not in this process, or takes a step the loop does not)."""


@dataclass(frozen=True)
class Call:
    """What a loop route runs for a request: the view's declarations (`view_class`, `method`, the
    URL's `kwargs`), the route's name for figures, and its steps.

    - `handler(principal, target, prepared)`: a coroutine, the data to answer;
    - `prepare(principal)`: what the handler computes from this process's memory alone (an answer
      made of cached snapshots, a write's validated body), run with authentication, before the
      request is counted, so that needing the database there (or HandOn) hands the request on
      uncounted; an error it raises is raised where the handler runs, after the rate limit and
      the access check, as on the thread path;
    - `body_reader()`: the parsed body, for a declaration that reads it (direct.json_body_reader)."""

    view_class: type[SlopView]
    method: str
    kwargs: dict[str, Any]
    handler: LoopHandler
    route: str
    prepare: Prepare | None = None
    body_reader: Callable[[], Any] = dict


async def answer_on_loop(scope: Scope, call: Call) -> Answer | None:
    """The answer to a request `direct.serve` would answer (`call.handler`'s data), or None when it
    must go to the thread path (nothing of it done yet: a request counted by the rate limit is
    uncounted)."""
    if not takes_plain_requests():
        return None
    span = tracing.LoopServerSpan.open(scope["method"], scope["headers"])
    try:
        answer = await _answer(scope, call)
    except BaseException:  # (cancelled: the loop closing)
        if span is not None:
            span.handed_on()
        raise
    if span is not None:
        if answer is None:
            span.handed_on()
        else:
            span.answered(scope["method"], call.route, answer[0])
    if metrics.enabled():
        outcome = (call.route, answer is not None)
        counter = _outcomes.get(outcome)
        if counter is None:
            counter = _outcomes[outcome] = metrics.HTTP_EVENT_LOOP.labels(
                call.route, "handed_on" if answer is None else "answered"
            )
        counter.inc()
    return answer


_outcomes: dict[tuple[str, bool], Any] = {}  # slop_http_event_loop_requests' child per (route, answered)


async def _answer(scope: Scope, call: Call) -> Answer | None:
    request = LoopRequest(scope)
    if not request.host_allowed():
        return None  # Django's 400 for the Host, on the thread path
    try:
        check_named_text([(name, value) for name, value in call.kwargs.items() if isinstance(value, str)])
    except ApplicationError:
        return None  # the input rule's 400 comes before authentication: the thread path's
    incoming = request.headers.get("x-request-id", "")
    request_id = incoming if VALID_REQUEST_ID.match(incoming) else new_id("req")
    request.request_id = request_id
    started = time.perf_counter()
    id_token = request_id_var.set(request_id)
    request_token = context.enter_request(request)
    view_class = call.view_class
    try:
        allow = direct.allow_header(view_class)
        try:
            prepared: Any = None
            prepare_error: Exception | None = None
            try:
                principal, bucket, limit = _known_caller(request)
                if call.prepare is not None:
                    try:
                        prepared = call.prepare(principal)
                    except (SynchronousOnlyOperation, HandOn):
                        raise
                    except Exception as exc:
                        prepare_error = exc
            except (SynchronousOnlyOperation, HandOn):
                return None  # it needed the database: a key not cached here, a use to record
            counter = None
            if limit > 0:
                now = throttling._clock()
                counter = f"{bucket}:{int(now // throttling.WINDOW_SECONDS)}"
                wait = throttling.seconds_to_wait(await throttling.count_on_loop(counter), limit, now)
                if wait is not None:
                    raise drf_exceptions.Throttled(max(1.0, wait))
            declaration = None if view_class.dangerously_unchecked else view_class.access[call.method]
            target = (
                enforce(
                    principal,
                    declaration,
                    Context(kwargs=call.kwargs, headers=request.headers, body_reader=call.body_reader),
                )
                if declaration is not None
                else None
            )
            if prepare_error is not None:
                raise prepare_error
            try:
                data = await call.handler(principal, target, prepared)
            except (SynchronousOnlyOperation, HandOn) as exc:
                if isinstance(exc, SynchronousOnlyOperation):  # its prepare() should have read it
                    logger.warning("%s %s needed the database on the event loop", request.method, call.route)
                if counter is not None:
                    await throttling.uncount_on_loop(counter)  # the thread path counts it
                return None
            status, body = 200, direct.render(data)
            headers = [("Content-Type", "application/json"), ("Allow", allow)]
        except Exception as exc:
            response = direct.error_answer(request, exc, allow)  # type: ignore[arg-type]
            status, headers, body = response.status_code, list(response.items()), response.content
        headers.extend(_security_headers(request.is_secure()))
        headers.append(("X-Request-ID", request_id))
        _request_figures().record(request, _Answered(status), call.route, started)
    finally:
        context.leave_request(request_token)
        request_id_var.reset(id_token)
    encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    return status, encoded, body


def _known_caller(request: LoopRequest) -> tuple[Principal, str, int]:
    """The caller, its rate-limit counter and limit; SynchronousOnlyOperation when finding them
    needs the database."""
    headers = request.headers
    principal = principal_for(
        headers.get("Authorization"), headers.get("X-API-Key"), headers.get(SCOPE_HEADER)
    )
    if principal is None:  # the route takes only requests with a key header: a route's mistake
        raise RuntimeError("a loop route took a request that sent no API key")
    principal = attach_to(request, principal)  # type: ignore[arg-type]
    request.auth = request.user = principal
    bucket, limit = throttling.bucket_of(request)
    return principal, bucket, limit
