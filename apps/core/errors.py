"""One error type and one renderer for every error the platform answers (PROTOCOL.md §2).

Every error is JSON: {"error": "<a human sentence>", "code": "<snake_case>", "status": <int>, ...}.
DRF views, plain Django views, middleware, SSE streams and WebSocket consumers all go through
`error_payload`, so the shape cannot drift between transports.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from django.core.exceptions import (
    DisallowedHost,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

logger = logging.getLogger("slop.errors")


class ApplicationError(Exception):
    """An error the client should see, with its status and stable code."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid_request",
        status: int = 400,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.extra = extra or {}
        self.headers = headers or {}

    def payload(self) -> dict[str, Any]:
        return error_payload(self.message, code=self.code, status=self.status, **self.extra)


class NotFound(ApplicationError):
    def __init__(self, message: str = "Not found") -> None:
        super().__init__(message, code="not_found", status=404)


class ValidationFailed(ApplicationError):
    def __init__(self, details: dict[str, list[str]], message: str | None = None) -> None:
        if message is None:
            message = "Invalid request: " + "; ".join(
                f"{field}: {' '.join(msgs)}" for field, msgs in details.items()
            )
        super().__init__(message, code="validation_error", status=400, extra={"details": details})


def error_payload(message: str, *, code: str, status: int, **extra: Any) -> dict[str, Any]:
    return {"error": message, "code": code, "status": status, **extra}


def error_response(error: ApplicationError) -> JsonResponse:
    response = JsonResponse(error.payload(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def _flatten_details(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into {"field.sub": ["message", ...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in _flatten_details(value, name).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                for field, messages in _flatten_details(item, f"{prefix}[{index}]").items():
                    out.setdefault(field, []).extend(messages)
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def to_application_error(exc: BaseException) -> ApplicationError | None:
    """Map any known exception to an ApplicationError; None means it is a bug (→ 500)."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, drf_exceptions.ValidationError):
        return ValidationFailed(_flatten_details(exc.detail))
    if isinstance(exc, RecursionError):  # json.loads on a body nested thousands of levels deep
        return ApplicationError("Malformed request body: JSON nested too deeply", code="invalid_request")
    if isinstance(exc, drf_exceptions.ParseError):
        return ApplicationError(f"Malformed request body: {exc.detail}", code="invalid_request", status=400)
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return ApplicationError(
            f"{exc.detail} Send application/json.", code="unsupported_media_type", status=415
        )
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return ApplicationError(str(exc.detail), code="unauthenticated", status=401)
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return ApplicationError(str(exc.detail), code="method_not_allowed", status=405)
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return ApplicationError(str(exc.detail), code="not_acceptable", status=406)
    if isinstance(exc, drf_exceptions.Throttled):
        wait = int(getattr(exc, "wait", None) or 1)
        return ApplicationError(
            "Too many requests",
            code="rate_limited",
            status=429,
            extra={"retry_after": wait},
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, drf_exceptions.NotFound | Http404):
        return NotFound()
    if isinstance(exc, drf_exceptions.PermissionDenied | PermissionDenied):
        return ApplicationError("Permission denied", code="forbidden", status=403)
    if isinstance(exc, RequestDataTooBig):
        return ApplicationError("Request body is too large", code="payload_too_large", status=413)
    if isinstance(exc, SuspiciousOperation):
        return ApplicationError("Bad request", code="invalid_request", status=400)
    if isinstance(exc, drf_exceptions.APIException):
        return ApplicationError(str(exc.detail), code=str(exc.default_code), status=exc.status_code)
    from apps.core.degraded import dependency_error  # PostgreSQL or Redis down: 503, not a bug

    return dependency_error(exc)


def internal_error(request: HttpRequest | None, exc: BaseException) -> ApplicationError:
    request_id = getattr(request, "request_id", None)
    logger.error("Unhandled error on %s", getattr(request, "path", "?"), exc_info=exc)
    return ApplicationError(
        "Internal server error", code="internal_error", status=500, extra={"request_id": request_id}
    )


def host_refused(request: HttpRequest) -> ApplicationError | None:
    """The 400 for a Host header outside ALLOWED_HOSTS, or None when the host is allowed."""
    try:
        request.get_host()
    except DisallowedHost:
        host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
        return ApplicationError(
            f"This server does not answer to the Host header {str(host)[:200]!r} (ALLOWED_HOSTS)",
            code="invalid_request",
        )
    return None


def error_for_status(request: HttpRequest, status: int) -> ApplicationError:
    """The §2 error for a status Django answered by itself (no route, bad Host, a crash, ...)."""
    if status == 400:
        return host_refused(request) or ApplicationError("Bad request", code="invalid_request")
    if status == 404:
        return ApplicationError(f"No endpoint at {request.path}", code="not_found", status=404)
    if status == 405:
        return ApplicationError(
            f"Method {request.method} is not allowed on {request.path}", code="method_not_allowed", status=405
        )
    if status == 500:
        return ApplicationError(
            "Internal server error",
            code="internal_error",
            status=500,
            extra={"request_id": getattr(request, "request_id", None)},
        )
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    codes = {403: "forbidden", 413: "payload_too_large", 415: "unsupported_media_type"}
    code = codes.get(status) or phrase.lower().replace(" ", "_").replace("-", "_")
    return ApplicationError(phrase, code=code, status=status)


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    request = context.get("request")
    error = to_application_error(exc) or internal_error(request, exc)
    response = Response(error.payload(), status=error.status, headers=error.headers)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="slop"'
    return response
