"""The floor bench/request_cost.py compares with: Django with no middleware, plain views doing the
same one query as the platform's `GET /memory/:key` (first tenant, key from the URL) and orjson."""

from __future__ import annotations

import orjson
from django.http import HttpRequest, HttpResponse
from django.urls import path

from apps.memory.models import MemoryItem


def _json(data: object) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), content_type="application/json")


def healthz(request: HttpRequest) -> HttpResponse:
    return _json({"status": "ok"})


def info(request: HttpRequest) -> HttpResponse:
    return _json({"name": "slop", "version": "x", "endpoints": ["/chat", "/tools", "/memory"]})


def memory_item(request: HttpRequest, key: str) -> HttpResponse:
    # The one query a key's read costs; crossing tenants is the point of a floor with no auth.
    columns = ("key", "value", "created_at", "updated_at")
    item = MemoryItem.objects.unscoped().only(*columns).filter(key=key).first()
    if item is None:
        return _json({"error": "not found"})
    return _json({"key": item.key, "value": item.value, "created_at": item.created_at.isoformat()})


def memory(request: HttpRequest) -> HttpResponse:
    body = orjson.loads(request.body)
    MemoryItem.objects.unscoped().filter(key=body["key"]).update(value=body["value"])
    return _json({"status": "stored"})


urlpatterns = [
    path("healthz", healthz),
    path("info", info),
    path("memory", memory),
    path("memory/<path:key>", memory_item),
]
