"""The routes a URL configuration serves, and which of them the generic access test has no case for.

Kept apart from the test so that the test of the test can run the same check on another urlconf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver

from apps.tenants.access import Need, NeedSome, NeedTarget
from apps.tenants.api import SlopView, served_methods

# Routes no tenant data sits behind, each with why it has no case. Nothing else may be left out.
PUBLIC_ROUTES = {
    "info": "anonymous by the protocol; with a key it describes only the caller",
    "healthz": "health check",
    "readyz": "health check",
    "metrics": "operators' figures: SLOP_METRICS_TOKEN or loopback (tests/core/test_observability.py)",
    "openapi": "the API's description",
    "docs": "Swagger UI",
    "pay-webhook": "Stripe's, authenticated by its signature (tests/pay/test_webhooks.py)",
    "pay-webhook-tenant": "Stripe's, authenticated by its signature (tests/pay/test_webhooks.py)",
    "billing-webhook": "Stripe's, authenticated by its signature (tests/billing/test_billing_webhooks.py)",
    "openai-not-found": "OpenAI's 404 for any other path under /v1 (tests/facades/test_openai_api.py)",
    "home": "a redirect to the console",
}
PUBLIC_NAMESPACES = {
    "admin": "Django admin: staff sessions, tests/*/test_admin.py",
    "dashboard": "the team console: members only, each team page a TeamPage (tests/dashboard)",
}


@dataclass(frozen=True)
class Route:
    name: str | None
    namespace: str | None
    pattern: str
    view: type | None
    methods: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name or '(unnamed)'} /{self.pattern}"


def _view_class(callback: Any) -> type | None:
    return getattr(callback, "cls", None) or getattr(callback, "view_class", None)


def routes(resolver: URLResolver, prefix: str = "", namespace: str | None = None) -> list[Route]:
    """Every route under `resolver`, through includes, with the methods its view serves."""
    found: list[Route] = []
    for pattern in resolver.url_patterns:
        text = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found.extend(routes(pattern, text, pattern.namespace or namespace))
        elif isinstance(pattern, URLPattern):
            view = _view_class(pattern.callback)
            methods = (
                tuple(served_methods(view)) if view is not None and hasattr(view, "http_method_names") else ()
            )
            found.append(Route(pattern.name, namespace, text, view, methods))
    return found


def uncovered(found: Iterable[Route], cases: Mapping[str, Any]) -> list[str]:
    """What has no case: a route, or a method of one; and any route whose view is not a SlopView
    (its access would not be checked at all)."""
    problems: list[str] = []
    for route in found:
        if route.namespace in PUBLIC_NAMESPACES or route.name in PUBLIC_ROUTES:
            continue
        if route.view is None or not issubclass(route.view, SlopView):
            problems.append(f"{route.label}: not a SlopView, so no declared access check runs")
            continue
        case = cases.get(route.name or "")
        if case is None:
            problems.append(f"{route.label}: no case in tests/core/test_route_access.py CASES")
            continue
        probed = {probe.method for probe in case.probes}
        problems.extend(
            f"{route.label}: no probe for {method}" for method in route.methods if method not in probed
        )
    return problems


@dataclass(frozen=True)
class Socket:
    path: str
    consumer: type | None


def websocket_routes(patterns: Iterable[Any], prefix: str = "") -> list[Socket]:
    """Every WebSocket route (Channels' URLRouter patterns, through nested routers)."""
    found: list[Socket] = []
    for pattern in patterns:
        text = prefix + str(pattern.pattern)
        inner = getattr(pattern.callback, "routes", None)
        if inner is not None:
            found.extend(websocket_routes(inner, text))
        else:
            found.append(Socket(text, getattr(pattern.callback, "consumer_class", None)))
    return found


def uncovered_websockets(found: Iterable[Socket], cases: Mapping[str, Any]) -> list[str]:
    """A WebSocket route without a case, or whose consumer declares no `access` for its messages."""
    problems: list[str] = []
    for socket in found:
        access = getattr(socket.consumer, "access", None)
        if not isinstance(access, Need | NeedSome | NeedTarget):
            problems.append(f"ws /{socket.path}: its consumer declares no access for its messages")
        elif socket.path not in cases:
            problems.append(f"ws /{socket.path}: no case in tests/core/test_route_access.py WEBSOCKET_CASES")
    return problems
