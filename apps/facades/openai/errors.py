"""Errors under /v1 in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

The platform raises its one error type (apps/core/errors.py) everywhere; this door only renders it
the way OpenAI clients parse it. The SLOP code is kept where OpenAI has no equivalent
(`scope_violation`, with `required_scope` beside it), so a refusal still names what was missing.
"""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response

from apps.core.errors import ApplicationError, ValidationFailed, internal_error, to_application_error

# SLOP code -> (status, OpenAI type, OpenAI code) where OpenAI clients expect something particular.
_TRANSLATED: dict[str, tuple[int, str, str]] = {
    "unauthenticated": (401, "invalid_request_error", "invalid_api_key"),
    "unknown_model": (404, "invalid_request_error", "model_not_found"),
    "quota_exceeded": (429, "insufficient_quota", "insufficient_quota"),
    "rate_limited": (429, "requests", "rate_limit_exceeded"),
    "validation_error": (400, "invalid_request_error", "invalid_value"),
}
_KEPT = ("required_scope", "permitted", "retry_after", "limit", "used", "scope", "upgrade_url", "request_id")


class OpenAIError(ApplicationError):
    """A refusal that names the request parameter at fault (OpenAI's `param`)."""

    def __init__(self, message: str, *, param: str | None, code: str, status: int = 400) -> None:
        super().__init__(message, code=code, status=status, extra={"param": param})


def unsupported(param: str, why: str = "") -> OpenAIError:
    reason = why or "this server does not act on it, so it refuses it rather than ignore it"
    return OpenAIError(
        f"Unsupported parameter: '{param}': {reason}.", param=param, code="unsupported_parameter"
    )


def invalid(param: str, message: str) -> OpenAIError:
    return OpenAIError(f"Invalid '{param}': {message}", param=param, code="invalid_value")


def model_not_found(model: str) -> OpenAIError:
    return OpenAIError(
        f"The model '{model}' does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
        status=404,
    )


def _param_of(error: ApplicationError) -> str | None:
    if error.code == "unknown_model":
        return "model"
    if "param" in error.extra:
        return error.extra["param"]  # type: ignore[no-any-return]
    if isinstance(error, ValidationFailed):
        details = error.extra.get("details") or {}
        first = next(iter(details), None)
        return None if first in (None, "non_field_errors") else str(first)
    return None


def openai_error_body(error: ApplicationError) -> tuple[int, dict[str, Any]]:
    status, kind, code = _TRANSLATED.get(error.code, (error.status, "", error.code))
    if not kind:
        kind = "server_error" if status >= 500 else "invalid_request_error"
    body: dict[str, Any] = {"message": error.message, "type": kind, "param": _param_of(error), "code": code}
    body.update({key: error.extra[key] for key in _KEPT if key in error.extra})
    return status, {"error": body}


def openai_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    error = to_application_error(exc) or internal_error(context.get("request"), exc)
    status, body = openai_error_body(error)
    response = Response(body, status=status, headers=error.headers)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="slop"'
    return response
