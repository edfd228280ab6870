"""One middleware for the figures of a request: its counter and latency by route pattern, its
log context (request id, then the tenant and key once DRF has authenticated), a request log line
and, when tracing is on, its server span.

It sits right inside RequestIdMiddleware, so the request has its id. The route is the URL pattern
Django resolved (`memory/<path:key>`), never the path: a public surface's `/t/<slug>/` is stripped
before resolution (apps/tenants/public.py), and an unknown path is `unmatched`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apps.core.observability import context, metrics, tracing

request_logger = logging.getLogger("slop.request")


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return str(match.route) or "/"


class ObservabilityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.metrics = bool(getattr(settings, "SLOP_METRICS", True))
        self.request_log = bool(getattr(settings, "SLOP_REQUEST_LOG", True))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        method = str(request.method)
        with context.request_context(request), tracing.server_span(method, request.headers) as span:
            response = self.get_response(request)
            route = route_of(request)
            status = response.status_code
            if span is not None:
                span.update_name(f"{request.method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
            elapsed = time.perf_counter() - started
            if self.metrics:
                metrics.HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
                metrics.HTTP_DURATION.labels(request.method, route).observe(elapsed)
            if self.request_log and route != "metrics":
                request_logger.info(
                    "%s %s %s",
                    request.method,
                    route,
                    status,
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                    },
                )
        return response
