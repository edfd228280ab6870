"""GET /memory/:key, the platform's busiest read, served directly (apps.tenants.direct: the view's
steps without URL resolution or DRF's dispatch) when the request is what a JSON client sends: an
API key header, no query string, an Accept that JSON answers. Any other request of the route (no
key, HEAD, `?format=`, `Accept: text/html`, below /t/<slug>/) goes through Django's URL
resolution and the view as before, and gets the same answers (tests/tenants/test_hot_endpoints.py).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from apps.core.asgi import DirectWSGIHandler
from apps.core.serving import DirectRoute, Scope
from apps.memory.api import MemoryItemView, item_answer
from apps.tenants import direct
from apps.tenants.authentication import Principal

PREFIX = "/memory/"


def accepts(scope: Scope) -> bool:
    """GET /memory/<key> as JSON clients send it (apps.tenants.direct.keyed_json_get); the route
    `memory/query`, a view of its own, and /t/<slug>/ paths are not taken."""
    path: str = scope["path"]
    return (
        path.startswith(PREFIX)
        and len(path) > len(PREFIX)
        and path != "/memory/query"
        and direct.keyed_json_get(scope)
    )


def _kwargs_of(path_info: str) -> dict[str, Any]:
    return {"key": path_info[len(PREFIX) :]}


def memory_item(request: HttpRequest, key: str) -> HttpResponse:
    def answer(principal: Principal, target: Any) -> dict[str, Any]:
        return item_answer(principal.tenant, key)

    return direct.serve(request, MemoryItemView, "GET", {"key": key}, answer)


def route() -> DirectRoute:
    handler = DirectWSGIHandler(
        memory_item, route="memory/<path:key>", url_name="memory-item", kwargs_of=_kwargs_of
    )
    return DirectRoute(accepts=accepts, app=handler)
