"""A SlopView's request, served without URL resolution or DRF's dispatch: the same steps in the
same order, on the Django request (apps.core.asgi.DirectWSGIHandler runs the platform middleware
around it).

DRF's dispatch and Django's URL resolution were most of what a `GET /memory/:key` cost above its
query (bench/request_cost.py; README, "Serving layout and performance"). For the requests every
JSON client sends — a key, no query string, an Accept JSON answers — a route may instead serve
its view's steps directly, through the same functions the view's classes call:

1. content negotiation: nothing to do (the front only sends requests whose Accept takes JSON);
2. authentication: `ApiKeyAuthentication`'s (the key, X-SLOP-Scope, /t/ tenant, X-SLOP-User);
3. permission: `HasApiKey` (a key was sent: the front only sends requests that carry one);
4. the view's throttles (`RateLimit`), each given the Django request;
5. the view's declared access (`SlopView.check_access`'s `enforce`);
6. the handler's own work, answered as `SlopView.finalize_response` renders it (orjson, DRF's
   encoder where orjson cannot), with the view's `Allow` header;

and any exception is answered as `apps.core.errors.drf_exception_handler` answers it. The
answers are pinned to the byte by tests/tenants/test_hot_endpoints.py, through both paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions as drf_exceptions

from apps.core.errors import internal_error, to_application_error
from apps.core.parsers import JSONParser
from apps.core.renderers import ORJSONRenderer
from apps.core.serving import Scope
from apps.tenants.access import Context, enforce
from apps.tenants.api import SlopView
from apps.tenants.authentication import SCOPE_HEADER, Principal, attach_to, principal_for

_allow: dict[type[SlopView], str] = {}
_JSON_ACCEPTS = (b"*/*", b"application/json")


def keyed_json_get(scope: Scope) -> bool:
    """A GET with an API key header, no query string and an Accept JSON answers (or none): the
    requests a direct route may take (DRF's content negotiation has nothing to choose for them)."""
    return _keyed_json(scope, "GET", body=False)


def keyed_json_post(scope: Scope) -> bool:
    """The same for a POST, of a JSON body of announced length: what a JSON client sends to write."""
    return _keyed_json(scope, "POST", body=True)


def _keyed_json(scope: Scope, method: str, *, body: bool) -> bool:
    if scope["method"] != method or scope.get("query_string"):
        return False
    keyed = json_body = False
    for name, value in scope["headers"]:
        if name == b"accept":
            if value not in _JSON_ACCEPTS:
                return False
        elif name in (b"authorization", b"x-api-key") and value.strip():
            keyed = True
        elif not body:
            continue
        elif name == b"content-type":
            if value != b"application/json":
                return False
            json_body = True
        elif name == b"content-length":
            if not value.isdigit() or value == b"0":
                return False
        elif name == b"transfer-encoding":
            return False
    return keyed and (json_body or not body)


def allow_header(view_class: type[SlopView]) -> str:
    """The view's `Allow` header, as DRF writes it on every answer of the view."""
    found = _allow.get(view_class)
    if found is None:
        view = view_class()
        view.setup(HttpRequest())  # adds HEAD where GET is served, as for every request
        found = _allow.setdefault(view_class, ", ".join(view.allowed_methods))
    return found


def serve(
    request: HttpRequest,
    view_class: type[SlopView],
    method: str,
    kwargs: dict[str, Any],
    handler: Callable[[Principal, Any], Any],
    body_reader: Callable[[], Any] = dict,
) -> HttpResponse:
    """`handler(principal, target)`'s data (target: what the method's access declaration read),
    or the error, answered as the view would answer it. `body_reader`: the parsed body, for a
    declaration that reads it (parsed when first asked for, as DRF's `request.data`)."""
    allow = allow_header(view_class)
    try:
        principal = _caller(request)
        _throttle(request, view_class)
        declaration = None if view_class.dangerously_unchecked else view_class.access[method]
        target = (
            enforce(
                principal,
                declaration,
                Context(kwargs=kwargs, headers=request.headers, body_reader=body_reader),
            )
            if declaration is not None
            else None
        )
        data = handler(principal, target)
    except Exception as exc:
        return error_answer(request, exc, allow)
    return json_answer(data, allow)


def json_body_reader(stream: Any, encoding: str | None) -> Callable[[], Any]:
    """The body as the view's parser reads it (apps.core.parsers.JSONParser: the input rule
    included) from `stream` (the Django request itself, as DRF's Request reads it, or the bytes a
    loop route was given), parsed once, when first asked for; a body that does not parse raises
    the same error each time it is asked for, as DRF's Request does."""
    parsed: list[Any] = []
    failed: list[Exception] = []

    def read() -> Any:
        if failed:
            raise failed[0]
        if not parsed:
            try:
                parsed.append(_parser.parse(stream, "application/json", {"encoding": encoding}))
            except Exception as exc:
                failed.append(exc)
                raise
        return parsed[0]

    return read


def _caller(request: HttpRequest) -> Principal:
    headers = request.headers
    principal = principal_for(
        headers.get("Authorization"), headers.get("X-API-Key"), headers.get(SCOPE_HEADER)
    )
    if principal is None:  # the front sends only requests with a key header: a route's mistake
        raise RuntimeError("a direct route took a request that sent no API key")
    principal = attach_to(request, principal)
    # What DRF's Request sets on the Django request it wraps (the log context reads `auth`).
    request.auth = principal  # type: ignore[attr-defined]
    request.user = principal  # type: ignore[assignment]
    return principal


def _throttle(request: HttpRequest, view_class: type[SlopView]) -> None:
    """APIView.check_throttles: every throttle is asked; the longest wait is the answer's."""
    waits = []
    for throttle_class in view_class.throttle_classes:
        throttle = throttle_class()
        # The throttles read `auth` and `META`, which the Django request has as DRF's does.
        if not throttle.allow_request(cast(Any, request), cast(Any, None)):
            waits.append(throttle.wait())
    if waits:
        known = [wait for wait in waits if wait is not None]
        raise drf_exceptions.Throttled(max(known, default=None))


def json_answer(data: Any, allow: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(render(data), status=status, content_type="application/json")
    response["Allow"] = allow
    return response


def error_answer(request: HttpRequest, exc: Exception, allow: str) -> HttpResponse:
    """drf_exception_handler's answer, with the headers in the order DRF writes them."""
    error = to_application_error(exc) or internal_error(request, exc)
    response = HttpResponse(render(error.payload()), status=error.status, content_type="application/json")
    for name, value in error.headers.items():
        response[name] = value
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="slop"'
    response["Allow"] = allow
    return response


_renderer = ORJSONRenderer()
_parser = JSONParser()


def render(data: Any) -> bytes:
    """orjson's bytes, or DRF's encoder's where orjson cannot write (an integer past 64 bits)."""
    return _renderer.render(data, "application/json", {})
