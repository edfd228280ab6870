"""The real routes plus ones the access test has no case for (see test_route_access_coverage.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views import View
from rest_framework.request import Request
from rest_framework.response import Response

from apps.tenants.access import Need, url
from apps.tenants.api import SlopView
from slop_platform.urls import urlpatterns as real_urlpatterns


class NewThingView(SlopView):
    """A new endpoint, declared properly, whose author forgot the isolation case."""

    access = {"GET": Need("memory", "read", url("key"))}

    def get(self, request: Request, key: str) -> Response:
        return Response({"key": key})


class BypassView(View):
    """A plain Django view: no base, so no declared access check at all."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("{}")


urlpatterns = [
    *real_urlpatterns,
    path("things/<str:key>", NewThingView.as_view(), name="new-thing"),
    path("bypass", BypassView.as_view(), name="bypass"),
]
