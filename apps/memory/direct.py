"""GET /memory/:key and POST /memory, the platform's busiest read and write, served directly
(apps.tenants.direct: the view's steps without URL resolution or DRF's dispatch) when the request
is what a JSON client sends: an API key header, no query string, an Accept that JSON answers, a
JSON body of announced length. Any other request of the route (no key, HEAD, `?format=`,
`Accept: text/html`, a body sent chunked or as a form, below /t/<slug>/) goes through Django's URL
resolution and the view as before, and gets the same answers (tests/tenants/test_hot_endpoints.py).
"""

from __future__ import annotations

import io
from typing import Any

from django.http import HttpRequest, HttpResponse

from apps.core.asgi import DirectWSGIHandler
from apps.core.serving import DirectRoute, LoopRoute, Scope
from apps.memory.api import (
    MemoryCollectionView,
    MemoryItemView,
    item_answer,
    item_answer_on_loop,
    store_answer,
    store_answer_on_loop,
    store_held,
)
from apps.memory.models import MemoryItem
from apps.tenants import direct, loop
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


def loop_route() -> LoopRoute:
    """The same requests as route()'s, answered on the event loop when this process can
    (apps.tenants.loop); those it cannot go to route()'s handler."""
    loop.check_view(MemoryItemView)

    async def answer(scope: Scope, body: bytes) -> loop.Answer | None:
        key = scope["path"][len(PREFIX) :]

        async def read(principal: Principal, target: Any, prepared: Any) -> dict[str, Any]:
            return await item_answer_on_loop(principal.tenant, key)

        call = loop.Call(MemoryItemView, "GET", {"key": key}, read, route="memory/<path:key>")
        return await loop.answer_on_loop(scope, call)

    return LoopRoute(accepts=accepts, answer=answer)


def memory_store(request: HttpRequest) -> HttpResponse:
    read = direct.json_body_reader(request, request.encoding)

    def answer(principal: Principal, target: Any) -> dict[str, Any]:
        return store_answer(principal.tenant, read())

    return direct.serve(request, MemoryCollectionView, "POST", {}, answer, body_reader=read)


# What process_view's media-type rule reads (apps.core.middleware.media_type_refused): the view.
memory_store.cls = MemoryCollectionView  # type: ignore[attr-defined]


def _store_accepts(scope: Scope) -> bool:
    return scope["path"] == "/memory" and direct.keyed_json_post(scope)


def store_route() -> DirectRoute:
    handler = DirectWSGIHandler(memory_store, route="memory", url_name="memory", kwargs_of=lambda path: {})
    return DirectRoute(accepts=_store_accepts, app=handler)


def store_loop_route() -> LoopRoute:
    """store_route()'s requests, answered on the event loop when the write is an overwrite whose
    text is unchanged (the usual write: a value set again) or whose vector this process holds; a
    new key (the plan's cap), a vector to compute or a tenant not loaded here go to
    store_route()'s handler."""
    loop.check_view(MemoryCollectionView)

    async def answer(scope: Scope, body: bytes) -> loop.Answer | None:
        read = direct.json_body_reader(io.BytesIO(body), None)

        def prepare(principal: Principal) -> MemoryItem:
            item = store_held(principal.tenant, read())
            if item is None:
                raise loop.HandOn  # no embedding provider built in this process yet
            return item

        async def store(principal: Principal, target: Any, item: MemoryItem) -> dict[str, Any]:
            stored = await store_answer_on_loop(item)
            if stored is None:
                raise loop.HandOn  # a new key (its cap), or a vector to compute: on a thread
            return stored

        call = loop.Call(
            MemoryCollectionView, "POST", {}, store, route="memory", prepare=prepare, body_reader=read
        )
        return await loop.answer_on_loop(scope, call)

    return LoopRoute(accepts=_store_accepts, answer=answer)
