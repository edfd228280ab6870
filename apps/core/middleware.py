"""The platform's middleware (PlatformMiddleware, one layer): request ids, the public surface
prefix, body-size limits, the pages' middleware, the input rule for URLs and JSON errors for
everything that is not a DRF view."""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.handlers.exception import response_for_exception
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, get_script_prefix, set_script_prefix
from rest_framework.utils.mediatypes import media_type_matches

from apps.core.errors import (
    ApplicationError,
    error_for_status,
    error_response,
    internal_error,
    to_application_error,
)
from apps.core.ids import new_id
from apps.core.public_path import split_public_path
from apps.core.text import check_named_text

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # an X-Request-ID kept as sent


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def body_limit_for(path: str) -> int:
    limit = settings.MAX_BODY_BYTES
    for prefix, prefix_limit in settings.BODY_LIMITS.items():
        if path.startswith(prefix):
            limit = max(limit, prefix_limit)
    return limit


def body_refused(request: HttpRequest) -> HttpResponse | None:
    """413 before a body over the limit is parsed (or 400 for a Content-Length that is no number)."""
    limit = body_limit_for(request.path_info)  # below /t/<slug>/ on a public surface
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error_response(ApplicationError("Content-Length is not a number", status=400))
    if length > limit:
        return error_response(
            ApplicationError(
                f"Request body is {length} bytes; the limit here is {limit} bytes",
                code="payload_too_large",
                status=413,
                extra={"limit_bytes": limit},
            )
        )
    return None


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def media_type_refused(request: HttpRequest, view_func: Callable[..., Any]) -> HttpResponse | None:
    """415 for a body a DRF view has no parser for, before the view runs.

    DRF only notices a foreign Content-Type when a view reads `request.data`, so a view that reads
    it late, or a negotiation that picks JSON regardless (the chat views'), answered "JSON parse
    error" or nothing. Every JSON endpoint now refuses `text/plain` alike; a view that takes other
    bodies says so in its `parser_classes` (POST /resources: multipart), and a view with none
    (the Stripe webhook reads the raw bytes) is left alone.
    """
    view_class = getattr(view_func, "cls", None)  # set by APIView.as_view()
    if view_class is None or request.method not in _BODY_METHODS or not _has_body(request):
        return None
    accepted = [parser.media_type for parser in getattr(view_class, "parser_classes", [])]
    content_type = request.META.get("CONTENT_TYPE", "")
    if not accepted or any(media_type_matches(media, content_type) for media in accepted):
        return None
    sent = content_type.split(";")[0].strip() or "no Content-Type"
    return error_response(
        ApplicationError(
            f"Unsupported media type {sent!r}; send {' or '.join(accepted)}",
            code="unsupported_media_type",
            status=415,
        )
    )


def _has_body(request: HttpRequest) -> bool:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return False


def input_text_refused(
    request: HttpRequest, view_args: tuple[Any, ...], view_kwargs: dict[str, Any]
) -> HttpResponse | None:
    """The input rule (apps/core/text.py) for query parameters and URL captures, for every view.

    Bodies are checked by the parsers; this covers `?prefix=a%00b` and `/pay/tx%00`, which would
    otherwise reach a query as a NUL and fail in PostgreSQL.
    """
    try:
        if request.META.get("QUERY_STRING"):
            check_named_text((name, value) for name, values in request.GET.lists() for value in values)
        check_named_text(
            [(name, value) for name, value in view_kwargs.items() if isinstance(value, str)]
            + [(f"path[{index}]", value) for index, value in enumerate(view_args) if isinstance(value, str)]
        )
    except ApplicationError as refused:
        return error_response(refused)
    return None


def serves_html(path: str) -> bool:
    """The admin, the API docs and static files answer HTML; every other path is a SLOP path."""
    return path.startswith(tuple(settings.HTML_PATH_PREFIXES))


def not_found_page(request: HttpRequest, reason: str = "") -> HttpResponse:
    """The console's 404 page (templates/404.html), for the HTML paths. `reason`: the view's own
    words ("No such member"); an unknown route's Resolver404 says which patterns were tried, which
    is for developers, so it is never passed here."""
    context = {"reason": reason or "Nothing is at this address."}
    return render(request, "404.html", context, status=404)


_KEPT_HEADERS = ("X-Request-ID", "Allow", "Retry-After", "WWW-Authenticate")


def json_error_page(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """An error Django rendered as a page becomes PROTOCOL.md JSON.

    Django answers some errors before or around any view: an unknown route, a Host outside
    ALLOWED_HOSTS, an exception in a middleware. In production its handlers (handler404, ...) are
    ours and answer JSON; with DEBUG on it renders its technical pages instead (the URL list, a
    traceback), and `make run` runs with DEBUG. Whatever is not JSON on a SLOP path is replaced
    here, so development and production answer alike and no trace reaches a client.
    """
    if response.status_code < 400 or serves_html(request.path_info):
        return response
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    replacement = error_response(error_for_status(request, response.status_code))
    for header in _KEPT_HEADERS:
        if header in response:
            replacement[header] = response[header]
    if response.streaming:
        # A streaming body may hold a file. An HttpResponse holds nothing, and its close() would
        # send request_finished (which gives the database connection back) in mid-request; the
        # server closes the replacement, which ends the request once.
        response.close()
    return replacement


class PlatformMiddleware:
    """The platform's whole middleware chain, as one layer (settings.MIDDLEWARE).

    Each layer Django builds costs every request a call, its exception wrapper and, for the
    process_request/process_response kind, more calls and attribute lookups: the ten layers this
    replaces cost ~130 µs of a /healthz that does ~230 µs of its own work (bench/request_cost.py;
    README, "Serving layout and performance"). The steps are the same, in the same order, from the
    outside in:

    1. an error page that is not JSON on a SLOP path becomes the PROTOCOL.md error (json_error_page);
    2. /t/<slug>/<path> is served as <path> with `request.public_tenant_slug` set and the script
       prefix /t/<slug>/, so reverse() inside the request names URLs of the same surface;
    3. the request id (a sane X-Request-ID is kept), on the request, its log lines and response;
    4. its figures: metrics, log context and line, span (apps.core.observability.middleware);
    5. 413 for a body over the path's limit, before it is parsed;
    6. Django's SecurityMiddleware (its redirect to HTTPS, its response headers);
    7. the pages for people (HTML_PATH_PREFIXES) go through PAGES_MIDDLEWARE (sessions, CSRF, the
       admin's user, messages, clickjacking, static files), in their usual order; API requests use
       none of them and only have their Host checked against ALLOWED_HOSTS (CommonMiddleware did);
    8. before the view (process_view): the pages' own view hooks (CSRF), 415 for a body the view
       cannot parse, the input rule for the query string and URL captures;
    9. an exception that escapes a plain Django view is the PROTOCOL.md error, never a trace
       (process_exception); a PermissionDenied on a page is left to handler403's page.

    An exception raised by one of these steps is answered as Django answers one from a middleware
    (response_for_exception: handler400/403/404/500), inside the request id and figures, as before.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from django.middleware.security import SecurityMiddleware
        from django.utils.module_loading import import_string

        # (Imported here: this module is imported when logging is configured, for its filter,
        # before the apps are; the figures need prometheus_client and OpenTelemetry.)
        from apps.core.observability.middleware import RequestFigures

        self.get_response = get_response
        self.figures = RequestFigures()
        self.security = SecurityMiddleware(get_response)
        pages = get_response
        hooks: list[Callable[..., HttpResponse | None]] = []
        for path in reversed(settings.PAGES_MIDDLEWARE):
            pages = import_string(path)(pages)
            if hasattr(pages, "process_view"):
                hooks.insert(0, pages.process_view)
        self.pages = pages
        # Django calls `process_view` only on the middleware listed in MIDDLEWARE: the wrapped ones'
        # (CsrfViewMiddleware's check above all) are called from here, in their order.
        self.page_view_hooks = hooks

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            split = split_public_path(request.path_info)
            if split is None:
                response = self._identified(request)
            else:
                slug, rest = split
                request.public_tenant_slug = slug  # type: ignore[attr-defined]
                request.path_info = rest
                previous = get_script_prefix()
                set_script_prefix(f"{previous.rstrip('/')}/t/{slug}/")
                try:
                    response = self._identified(request)
                finally:
                    set_script_prefix(previous)
        except Exception as exc:
            response = response_for_exception(request, exc)
        return json_error_page(request, response)

    def _identified(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if VALID_REQUEST_ID.match(incoming) else new_id("req")
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.figures.observed(request, self._guarded)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response

    def _guarded(self, request: HttpRequest) -> HttpResponse:
        try:
            return self._served(request)
        except Exception as exc:
            return response_for_exception(request, exc)

    def _served(self, request: HttpRequest) -> HttpResponse:
        refused = body_refused(request)
        if refused is not None:
            return refused
        security = self.security
        response: HttpResponse | None = security.process_request(request)
        if response is None:
            if serves_html(request.path_info):
                response = self.pages(request)
                if response.status_code == 404 and settings.DEBUG and request.resolver_match is None:
                    # An unknown route with DEBUG on (`make run`): Django's page listing every URL
                    # pattern, where production's handler404 renders the console's. (Not closed:
                    # an HttpResponse holds nothing, and close() would signal the request's end.)
                    response = not_found_page(request)
            else:
                request.get_host()  # DisallowedHost (a 400) for a Host outside ALLOWED_HOSTS
                response = self.get_response(request)
        return security.process_response(request, response)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if serves_html(request.path_info):
            for hook in self.page_view_hooks:
                response: HttpResponse | None = hook(request, view_func, view_args, view_kwargs)
                if response is not None:
                    return response
        return media_type_refused(request, view_func) or input_text_refused(request, view_args, view_kwargs)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, PermissionDenied) and serves_html(request.path_info):
            return None  # a page for people: handler403 renders the console's 403 page
        if isinstance(exception, Http404) and serves_html(request.path_info):
            # Rendered here rather than left to handler404, which DEBUG (`make run`) would skip
            # for Django's technical page listing every URL.
            return not_found_page(request, "" if isinstance(exception, Resolver404) else str(exception))
        error = to_application_error(exception) or internal_error(request, exception)
        return error_response(error)
