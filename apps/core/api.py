"""The base view every SLOP endpoint inherits: the caller, the tenant and the one scope check."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.core.errors import ApplicationError
from apps.tenants.authentication import Principal, require_scope
from apps.tenants.models import Tenant
from apps.tenants.scopes import Action


class SlopView(APIView):
    """Authenticated by API key; `info_description` lists the route in GET /info."""

    info_description: str | None = None

    @property
    def principal(self) -> Principal:
        principal = self.request.auth
        if not isinstance(principal, Principal):  # HasApiKey runs first; this is a guard
            raise ApplicationError("Missing API key", code="unauthenticated", status=401)
        return principal

    @property
    def tenant(self) -> Tenant:
        return self.principal.tenant

    def require(
        self, area: str, permission: str, identifier: str | None = None, *, safe_tool: bool = False
    ) -> None:
        require_scope(
            self.principal,
            Action(area=area, permission=permission, identifier=identifier, safe_tool=safe_tool),
        )


class PublicView(APIView):
    """No credential needed (health checks, /info). A key that is sent is still checked."""

    permission_classes = [AllowAny]
    info_description: str | None = None


def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what was sent instead."""
    data = request.data
    if not isinstance(data, dict):
        raise ApplicationError(
            f"The request body must be a JSON object, not {type(data).__name__}", code="invalid_request"
        )
    return data
