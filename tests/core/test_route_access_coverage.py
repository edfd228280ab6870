"""The test of the test: a route added without a case fails the generic access test's coverage
check, and a view that does not declare its access does not even import."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import get_resolver
from rest_framework.request import Request
from rest_framework.response import Response

from apps.tenants.access import Need
from apps.tenants.api import SlopView
from tests.core.route_access import PUBLIC_NAMESPACES, routes, uncovered
from tests.core.test_route_access import CASES, Case, Probe


def test_a_route_added_without_a_case_is_named() -> None:
    problems = uncovered(routes(get_resolver("tests.core.fake_urls")), CASES)
    assert problems == [
        "new-thing /things/<str:key>: no case in tests/core/test_route_access.py CASES",
        "bypass /bypass: not a SlopView, so no declared access check runs",
    ]


def test_a_method_without_a_probe_is_named() -> None:
    only_get = Case(CASES["memory-item"].setup, (Probe("GET", "/memory/{key}", "memory.{key}.read"),), ())
    problems = uncovered(routes(get_resolver()), {**CASES, "memory-item": only_get})
    assert problems == [
        "memory-item /memory/<path:key>: no probe for PUT",
        "memory-item /memory/<path:key>: no probe for DELETE",
    ]


def test_the_real_routes_are_all_covered() -> None:
    found = routes(get_resolver())
    # Console pages (namespace dashboard) may share a SLOP route's name (dashboard:memory).
    checked = [route for route in found if route.name in CASES and route.namespace not in PUBLIC_NAMESPACES]
    assert uncovered(found, CASES) == []
    assert len(checked) == len(CASES)  # 19 SLOP routes (36 route-methods, 40 probes) when written


def _handler(self: Any, request: Request) -> Response:
    return Response({})


def test_a_view_serving_a_method_it_does_not_declare_does_not_import() -> None:
    with pytest.raises(ImproperlyConfigured, match="serves GET, POST without an access declaration"):
        type("Forgetful", (SlopView,), {"get": _handler, "post": _handler})
    with pytest.raises(ImproperlyConfigured, match="serves POST without"):
        type("Half", (SlopView,), {"get": _handler, "post": _handler, "access": {"GET": Need("pay", "read")}})


def test_the_access_hooks_cannot_be_overridden_nor_a_method_declared_twice_wrong() -> None:
    with pytest.raises(ImproperlyConfigured, match="overrides initial"):
        type("Sneaky", (SlopView,), {"initial": _handler, "dangerously_unchecked": "no"})
    with pytest.raises(ImproperlyConfigured, match="declares DELETE, which it does not serve"):
        type(
            "Typo",
            (SlopView,),
            {"get": _handler, "access": {"GET": Need("pay", "read"), "DELETE": Need("pay", "read")}},
        )


def test_the_escape_hatch_names_its_reason() -> None:
    view = type("Open", (SlopView,), {"get": _handler, "dangerously_unchecked": "a health check"})
    assert view.dangerously_unchecked == "a health check"


def test_a_websocket_route_without_a_declaration_or_a_case_is_named() -> None:
    from channels.generic.websocket import AsyncWebsocketConsumer
    from django.urls import path

    from apps.chat.access import SEND
    from slop_platform.routing import websocket_urlpatterns
    from tests.core.route_access import uncovered_websockets, websocket_routes
    from tests.core.test_route_access import WEBSOCKET_CASES

    class Bare(AsyncWebsocketConsumer):
        pass

    class Declared(AsyncWebsocketConsumer):
        access = SEND

    patterns = [*websocket_urlpatterns, path("bare/ws", Bare.as_asgi()), path("new/ws", Declared.as_asgi())]
    assert uncovered_websockets(websocket_routes(patterns), WEBSOCKET_CASES) == [
        "ws /bare/ws: its consumer declares no access for its messages",
        "ws /new/ws: no case in tests/core/test_route_access.py WEBSOCKET_CASES",
    ]
