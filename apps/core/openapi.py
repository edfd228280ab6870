"""How /openapi.json is built: one schema class for every view, so no operation can forget to say
who may call it, what errors it answers (PROTOCOL.md §2), or what it does.

Each view declares its own request and success shapes with `@extend_schema` (serializers the view
also validates with); this class adds what every view shares: the error responses implied by the
view's authentication, throttling, body and path parameters, the X-SLOP-Scope header, an operation
id named after the view, and a description taken from the view itself.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.permissions import AllowAny

from apps.core.serializers import ErrorSerializer

ERROR_DESCRIPTIONS = {
    400: "invalid_request (the body or a query parameter is malformed) or validation_error "
    '(+ "details": {"field": ["message"]})',
    401: "unauthenticated: no API key, or an unknown, expired or revoked one",
    402: "payment_required / payment_failed / quota_exceeded",
    403: 'scope_violation (+ "permitted": false, "required_scope"): the key\'s scopes, narrowed by '
    "X-SLOP-Scope, do not cover this action",
    404: "not_found: no such object in this team (another team's object is a 404 too)",
    409: "conflict: the object exists already, or the request contradicts its state",
    413: "payload_too_large: the body is over the size limit",
    415: "unsupported_media_type: send application/json",
    422: "The body parses but cannot be acted on",
    429: 'rate_limited (+ "retry_after" and a Retry-After header)',
    502: "upstream_error: the upstream (model provider, Stripe, webhook tool) failed; its reason is given",
    503: "The feature or its upstream is not configured or not available",
    504: "upstream_timeout: the upstream did not answer in time",
}
BODY_METHODS = {"POST", "PUT", "PATCH"}
SCOPE_PARAMETER = OpenApiParameter(
    "X-SLOP-Scope",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Comma-separated scopes that narrow the key's own for this request (PROTOCOL.md §3).",
)
END_USER_PARAMETER = OpenApiParameter(
    "X-SLOP-User",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="The team's own id of the end user this request is for (usage and quotas per end user, "
    "PROTOCOL.md §12); 1-200 printable characters.",
)


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """`responses=` entries for errors a view answers beyond the ones every view shares."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status])
        for status in statuses
    }


def _own_doc(owner: Any) -> str:
    doc = owner.__dict__.get("__doc__") if isinstance(owner, type) else getattr(owner, "__doc__", None)
    return inspect.cleandoc(doc) if doc else ""


class SlopAutoSchema(AutoSchema):
    def _authenticated(self) -> bool:
        return bool(self.view.get_authenticators())

    def _protected(self) -> bool:
        return not any(isinstance(p, AllowAny) for p in self.view.get_permissions())

    def get_override_parameters(self) -> list[Any]:
        # A path parameter declared on a method that a subclass serves at another route
        # (MemoryQueryView's inherited get/put/delete at /memory/query) is not in this path.
        parameters = [
            parameter
            for parameter in super().get_override_parameters()
            if not (
                isinstance(parameter, OpenApiParameter)
                and parameter.location == OpenApiParameter.PATH
                and "{" + parameter.name + "}" not in self.path
            )
        ]
        if self._authenticated():
            parameters.extend([SCOPE_PARAMETER, END_USER_PARAMETER])
        return parameters

    def get_description(self) -> str:  # type: ignore[override]
        """The method's docstring, else the view's own (not one inherited from a base class), else
        the line the view shows in GET /info."""
        handler = getattr(self.view.__class__, self.method.lower(), None)
        doc = (_own_doc(handler) if handler is not None else "") or _own_doc(self.view.__class__)
        return doc or (getattr(self.view, "info_description", None) or "")

    def get_operation_id(self) -> str:
        name = re.sub(r"View$", "", self.view.__class__.__name__)
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        return f"{snake}_{self.method.lower()}"

    def _default_errors(self) -> list[int]:
        statuses = [400]
        if self._authenticated():
            statuses.append(401)
            if self._protected():
                statuses.append(403)
        if self.method in BODY_METHODS:
            statuses.append(413)  # the size limit is a middleware's, before any parser
            if self.view.get_parsers():
                statuses.append(415)
        if "{" in self.path:
            statuses.append(404)
        if self.view.get_throttles():
            statuses.append(429)
        return statuses

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for status in self._default_errors():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    error_responses(status)[status], str(status), ["application/json"], direction
                )
        return dict(sorted(responses.items()))


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.tenants.authentication.ApiKeyAuthentication"
    name = ["ApiKey", "ApiKeyHeader"]  # type: ignore[assignment]

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[str]]]:
        return [{"ApiKey": []}, {"ApiKeyHeader": []}]

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict[str, Any]]:  # type: ignore[override]
        return [
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <api key>"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]


class TicketScheme(OpenApiAuthenticationExtension):
    target_class = "apps.chat.tickets.TicketAuthentication"
    name = "Ticket"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "query",
            "name": "ticket",
            "description": "A short-lived ticket from POST /chat/tickets, for browsers (never the key)",
        }
