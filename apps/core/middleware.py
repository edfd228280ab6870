"""Request ids, body-size limits and JSON errors for everything that is not a DRF view."""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apps.core.errors import ApplicationError, error_response, internal_error, to_application_error
from apps.core.ids import new_id
from apps.core.text import check_named_text

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RequestIdMiddleware:
    """Tags each request (and its log lines and response) with an id; a sane X-Request-ID is kept."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

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


class BodySizeLimitMiddleware:
    """Answers 413 before a body over the limit is parsed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = body_limit_for(request.path)
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


class InputTextMiddleware:
    """The input rule (apps/core/text.py) for query parameters and URL captures, for every view.

    Bodies are checked by the parsers; this covers `?prefix=a%00b` and `/pay/tx%00`, which would
    otherwise reach a query as a NUL and fail in PostgreSQL.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

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


class JsonErrorMiddleware:
    """Renders exceptions that escape plain Django views as PROTOCOL.md errors, never a trace."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse:
        error = to_application_error(exception) or internal_error(request, exception)
        return error_response(error)
