"""Request ids, body-size limits, the input rule for URLs and JSON errors for everything that is not
a DRF view."""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404
from rest_framework.utils.mediatypes import media_type_matches

from apps.core.errors import (
    ApplicationError,
    error_for_status,
    error_response,
    internal_error,
    to_application_error,
)
from apps.core.ids import new_id
from apps.core.text import check_named_text

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class Middleware:
    """Django's middleware protocol: the next handler kept, requests passed on (hooks such as
    `process_view` / `process_exception` do the work where a subclass defines them)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)


class RequestIdMiddleware(Middleware):
    """Tags each request (and its log lines and response) with an id; a sane X-Request-ID is kept."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else new_id("req")
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


def body_limit_for(path: str) -> int:
    limit = settings.MAX_BODY_BYTES
    for prefix, prefix_limit in settings.BODY_LIMITS.items():
        if path.startswith(prefix):
            limit = max(limit, prefix_limit)
    return limit


class BodySizeLimitMiddleware(Middleware):
    """Answers 413 before a body over the limit is parsed."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
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
        return self.get_response(request)


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class MediaTypeMiddleware(Middleware):
    """415 for a body a DRF view has no parser for, before the view runs.

    DRF only notices a foreign Content-Type when a view reads `request.data`, so a view that reads
    it late, or a negotiation that picks JSON regardless (the chat views'), answered "JSON parse
    error" or nothing. Every JSON endpoint now refuses `text/plain` alike; a view that takes other
    bodies says so in its `parser_classes` (POST /resources: multipart), and a view with none
    (the Stripe webhook reads the raw bytes) is left alone.
    """

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
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


class InputTextMiddleware(Middleware):
    """The input rule (apps/core/text.py) for query parameters and URL captures, for every view.

    Bodies are checked by the parsers; this covers `?prefix=a%00b` and `/pay/tx%00`, which would
    otherwise reach a query as a NUL and fail in PostgreSQL.
    """

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        try:
            check_named_text((name, value) for name, values in request.GET.lists() for value in values)
            check_named_text(
                [(name, value) for name, value in view_kwargs.items() if isinstance(value, str)]
                + [
                    (f"path[{index}]", value)
                    for index, value in enumerate(view_args)
                    if isinstance(value, str)
                ]
            )
        except ApplicationError as refused:
            return error_response(refused)
        return None


class JsonErrorMiddleware(Middleware):
    """Renders exceptions that escape plain Django views as PROTOCOL.md errors, never a trace."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, PermissionDenied) and serves_html(request.path_info):
            return None  # a page for people: handler403 renders the console's 403 page
        if isinstance(exception, Http404) and serves_html(request.path_info):
            # Rendered here rather than left to handler404, which DEBUG (`make run`) would skip
            # for Django's technical page listing every URL.
            return not_found_page(request, "" if isinstance(exception, Resolver404) else str(exception))
        error = to_application_error(exception) or internal_error(request, exception)
        return error_response(error)


def serves_html(path: str) -> bool:
    """The admin, the API docs and static files answer HTML; every other path is a SLOP path."""
    return any(path.startswith(prefix) for prefix in settings.HTML_PATH_PREFIXES)


def not_found_page(request: HttpRequest, reason: str = "") -> HttpResponse:
    """The console's 404 page (templates/404.html), for the HTML paths. `reason`: the view's own
    words ("No such member"); an unknown route's Resolver404 says which patterns were tried, which
    is for developers, so it is never passed here."""
    context = {"reason": reason or "Nothing is at this address."}
    return render(request, "404.html", context, status=404)


_KEPT_HEADERS = ("X-Request-ID", "Allow", "Retry-After", "WWW-Authenticate")


class JsonErrorPagesMiddleware(Middleware):
    """The outermost layer: an error Django rendered as a page becomes PROTOCOL.md JSON.

    Django answers some errors before or around any view: an unknown route, a Host outside
    ALLOWED_HOSTS, an exception in a middleware. In production its handlers (handler404, ...) are
    ours and answer JSON; with DEBUG on it renders its technical pages instead (the URL list, a
    traceback), and `make run` runs with DEBUG. Whatever is not JSON on a SLOP path is replaced
    here, so development and production answer alike and no trace reaches a client.
    """

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or serves_html(request.path_info):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        replacement = error_response(error_for_status(request, response.status_code))
        for header in _KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        response.close()
        return replacement


class PagesMiddleware(Middleware):
    """The middleware of pages for people (settings.PAGES_MIDDLEWARE: sessions, CSRF, the admin's
    user, messages, clickjacking, static files) around the paths that serve HTML only.

    API requests carry a key, not a session or a CSRF token, and never render a template with
    messages: these layers cost them ~100 µs each request for nothing (README, "Performance").
    The admin, the API docs, static files and any path listed in HTML_PATH_PREFIXES (a future
    dashboard) go through all of them, in their usual order.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(get_response)
        from django.utils.module_loading import import_string

        pages = get_response
        hooks: list[Callable[..., HttpResponse | None]] = []
        for path in reversed(settings.PAGES_MIDDLEWARE):
            pages = import_string(path)(pages)
            if hasattr(pages, "process_view"):
                hooks.insert(0, pages.process_view)
        self.pages = pages
        # Django calls `process_view` only on the middleware listed in MIDDLEWARE: the wrapped ones'
        # (CsrfViewMiddleware's check above all) are called from here, in their order.
        self.view_hooks = hooks

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if not serves_html(request.path_info):
            return None
        for hook in self.view_hooks:
            response: HttpResponse | None = hook(request, view_func, view_args, view_kwargs)
            if response is not None:
                return response
        return None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if serves_html(request.path_info):
            response = self.pages(request)
            if response.status_code == 404 and settings.DEBUG and request.resolver_match is None:
                # An unknown route with DEBUG on (`make run`): Django's page listing every URL
                # pattern, where production's handler404 renders the console's. (Not closed: an
                # HttpResponse holds nothing, and close() would signal the request's end.)
                return not_found_page(request)
            return response
        # CommonMiddleware read the host of every request, and so refused one outside
        # ALLOWED_HOSTS (DisallowedHost: a 400); API paths keep that check.
        request.get_host()
        return self.get_response(request)
