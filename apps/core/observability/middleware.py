"""The figures of a request: its counter and latency by route pattern, its log context (request id,
then the tenant and key once DRF has authenticated), its log line and, when tracing is on, its
server span. apps.core.middleware.PlatformMiddleware calls `observed` right inside the request id.

The route is the URL pattern Django resolved (`memory/<path:key>`), never the path: a public
surface's `/t/<slug>/` is stripped before resolution, and an unknown path is `unmatched`.

The log line (logger `slop.request`) is the one line a request writes: granian's access line is
off by default (SLOP_WEB_ACCESS_LOG), so this one carries what that one did too, the client
address and the path with its query string (redacted like every line), beside the request id,
tenant, key prefix, route, status and duration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apps.core.client_address import request_client_address
from apps.core.middleware import request_id_var
from apps.core.observability import context, logs, metrics, tracing

request_logger = logging.getLogger("slop.request")


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return str(match.route) or "/"


class RequestFigures:
    """Settings read once per process; `observed` is called for every request."""

    def __init__(self) -> None:
        self.metrics = bool(getattr(settings, "SLOP_METRICS", True))
        self.request_log = bool(getattr(settings, "SLOP_REQUEST_LOG", True))
        # The counter's and the histogram's children for each (method, route, status) seen: what
        # labels() gives again for the same labels, without its lock and its checks each time.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observed(self, request: HttpRequest, serve: Callable[[HttpRequest], HttpResponse]) -> HttpResponse:
        """serve(request), counted, timed and logged (a span around it when tracing is on)."""
        started = time.perf_counter()
        token = context.enter_request(request)
        try:
            if tracing.enabled():
                with tracing.server_span(str(request.method), request.headers) as span:
                    response = serve(request)
                    route = route_of(request)
                    if span is not None:
                        span.update_name(f"{request.method} {route}")
                        span.set_attribute("http.route", route)
                        span.set_attribute("http.response.status_code", response.status_code)
                    self.record(request, response, route, started)
            else:
                response = serve(request)
                self.record(request, response, route_of(request), started)
        finally:
            context.leave_request(token)
        return response

    def record(self, request: Any, response: Any, route: str, started: float) -> None:
        """The counter, latency and log line of a request answered (`response.status_code`) at
        `route`; also for a request answered on the event loop (apps.tenants.loop), whose
        `request` has what a Django request has for it (method, get_full_path(), META)."""
        elapsed = time.perf_counter() - started
        method = str(request.method)
        status = response.status_code
        if self.metrics:
            children = self._children.get((method, route, status))
            if children is None:
                children = (
                    metrics.HTTP_REQUESTS.labels(method, route, str(status)),
                    metrics.HTTP_DURATION.labels(method, route),
                )
                self._children[(method, route, status)] = children
            children[0].inc()
            children[1].observe(elapsed)
        if self.request_log and route != "metrics" and request_logger.isEnabledFor(logging.INFO):
            line = {
                "event": f"{method} {route} {status}",
                "level": "info",
                "logger": request_logger.name,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1_000_000) / 1000,  # (round(x, 3) was ~0.3 µs)
                "path": request.get_full_path(),
                "client": request_client_address(request.META),
            }
            handler = logs.platform_handler(request_logger, logging.INFO)
            if handler is not None:
                logs.write_request_line(handler, request_logger.name, request_id_var.get(), line)
            else:
                del line["event"], line["level"], line["logger"]
                request_logger.info("%s %s %s", method, route, status, extra=line)
