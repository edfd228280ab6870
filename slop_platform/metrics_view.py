"""GET /metrics: Prometheus's text format, for operators.

Access: with SLOP_METRICS_TOKEN set, a request must carry `Authorization: Bearer <that token>`
(compared in constant time); unset, only a direct request from this machine is answered, one whose
socket peer is loopback and that carries no proxy header (a proxy on the same machine forwards
outside requests from loopback, and says so in X-Forwarded-For). Anything else is a 403; with
SLOP_METRICS=false the route is a 404. Not rate-limited, not in the OpenAPI description.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request

from apps.core.errors import ApplicationError, NotFound
from apps.core.observability.metrics import CONTENT_TYPE, exposition
from apps.tenants.api import PublicView

_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def metrics_allowed(request: Request) -> bool:
    token = settings.SLOP_METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        scheme, _, value = sent.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
    if any(header in request.META for header in _PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


class MetricsView(PublicView):
    dangerously_unchecked = "operators' figures, no tenant data: SLOP_METRICS_TOKEN or loopback only"

    authentication_classes = []  # the bearer here is the metrics token, not an API key
    throttle_classes = []

    @extend_schema(exclude=True)
    def get(self, request: Request) -> HttpResponse:
        if not settings.SLOP_METRICS:
            raise NotFound("No endpoint at /metrics (SLOP_METRICS is false)")
        if not metrics_allowed(request):
            raise ApplicationError(
                "Metrics are for operators: send Authorization: Bearer <SLOP_METRICS_TOKEN>, "
                "or ask from this machine when no token is set",
                code="forbidden",
                status=403,
            )
        return HttpResponse(exposition(), content_type=CONTENT_TYPE)
