"""The real routes plus a few views that only tests need (a scope-protected action, a crash)."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from apps.tenants.access import Need, url
from apps.tenants.api import SlopView, json_body
from slop_platform.urls import handler400, handler403, handler404, handler500
from slop_platform.urls import urlpatterns as real_urlpatterns


class GuardedToolView(SlopView):
    access = {"POST": Need("tools", "execute", url("tool_id"))}

    def post(self, request: Request, tool_id: str) -> Response:
        return Response({"result": json_body(request)})


class GuardedMemoryView(SlopView):
    access = {"GET": Need("memory", "read", url("key"))}

    def get(self, request: Request, key: str) -> Response:
        return Response({"key": key, "tenant": self.tenant.slug})


class CrashView(SlopView):
    dangerously_unchecked = "a test route that only crashes"

    def get(self, request: Request) -> Response:
        raise RuntimeError("secret internals: password=hunter2")


urlpatterns = [
    *real_urlpatterns,
    path("_test/tools/<str:tool_id>", GuardedToolView.as_view()),
    path("_test/memory/<path:key>", GuardedMemoryView.as_view()),
    path("_test/crash", CrashView.as_view()),
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
