"""The /memory endpoints (PROTOCOL.md §7): thin views over services and selectors."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.openapi import error_responses
from apps.core.serializers import page_query, validated, validated_statelessly
from apps.memory import selectors, services
from apps.memory.models import MemoryItem
from apps.memory.serializers import (
    DeletedStatusSerializer,
    MemoryItemSerializer,
    MemoryListQuerySerializer,
    MemoryListSerializer,
    MemoryQueryResultsSerializer,
    MemoryQuerySerializer,
    MemoryStoreSerializer,
    MemoryUpdateSerializer,
    StoredStatusSerializer,
    UpdatedStatusSerializer,
)
from apps.tenants.access import Need, NeedSome, body, url
from apps.tenants.api import SlopView
from apps.tenants.models import Tenant


def _timestamp(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


KEY_PATH = OpenApiParameter(
    "key",
    str,
    OpenApiParameter.PATH,
    description="The whole rest of the path: thread:thread_1, user/prefs",
    examples=[OpenApiExample("The seed's key", value="user_preference")],
)


def store_answer(tenant: Tenant, data: Any) -> dict[str, Any]:
    """POST /memory's work and answer (also served directly: apps/memory/direct.py)."""
    body = validated_statelessly(MemoryStoreSerializer, data)
    services.memory_item_store(tenant=tenant, key=body["key"], value=body["value"])
    return {"status": "stored"}


def store_held(tenant: Tenant, data: Any) -> MemoryItem | None:
    """store_answer's validation, and the item it would write, its vector if this process holds
    it (None for the whole while this process has no embedding provider built): the loop route's
    first step (apps/memory/direct.py)."""
    body = validated_statelessly(MemoryStoreSerializer, data)
    return services.memory_item_held_for_store(tenant=tenant, key=body["key"], value=body["value"])


async def store_answer_on_loop(item: MemoryItem) -> dict[str, Any] | None:
    """store_answer's write and answer on the event loop, for a key the tenant has whose text is
    unchanged or whose vector is held here; None otherwise (nothing written), for the thread path:
    a new key (the plan's cap), a vector to compute."""
    if not await services.memory_item_store_on_loop(item):
        return None
    return {"status": "stored"}


def item_answer(tenant: Tenant, key: str) -> dict[str, Any]:
    """GET /memory/:key's answer (also served directly: apps/memory/direct.py)."""
    services.validate_key(key)
    return _item(selectors.memory_item_answer(tenant=tenant, key=key))


async def item_answer_on_loop(tenant: Tenant, key: str) -> dict[str, Any]:
    """item_answer on the event loop (apps/memory/direct.py's loop route)."""
    services.validate_key(key)
    return _item(await selectors.memory_item_answer_on_loop(tenant=tenant, key=key))


def _item(row: tuple[str, Any, Any, Any]) -> dict[str, Any]:
    stored_key, value, created_at, updated_at = row
    return {
        "key": stored_key,
        "value": value,
        "created_at": _timestamp(created_at),
        "updated_at": _timestamp(updated_at),
    }


# GET/PUT/DELETE /memory/query reach a key literally named `query` (that route has no key part).
_KEY_IN_URL = url("key", default="query", validate=services.validate_key)


class MemoryCollectionView(SlopView):
    info_description = "Store a key-value pair (POST) and list keys (GET, ?prefix=)"
    access = {
        "GET": NeedSome("memory", "read"),  # the list holds only readable keys
        "POST": Need("memory", "write", body("key", validate=services.validate_key)),
    }

    @extend_schema(parameters=[MemoryListQuerySerializer], responses={200: MemoryListSerializer})
    def get(self, request: Request) -> Response:
        """The keys this caller may read, newest first; ?prefix= narrows them."""
        query = page_query(request.query_params, MemoryListQuerySerializer)
        page = selectors.memory_item_list(
            principal=self.principal, prefix=query.get("prefix"), cursor=query["cursor"], limit=query["limit"]
        )
        keys = [
            {
                "key": item.key,
                "created_at": _timestamp(item.created_at),
                "updated_at": _timestamp(item.updated_at),
            }
            for item in page.items
        ]
        return Response({"keys": keys, "next_cursor": page.next_cursor})

    @extend_schema(request=MemoryStoreSerializer, responses={200: StoredStatusSerializer})
    def post(self, request: Request) -> Response:
        """Store a value under a key, creating or overwriting it."""
        return Response(store_answer(self.tenant, request.data))


class MemoryItemView(SlopView):
    info_description = "Get, update (returns previous_value) or delete one key"
    access = {
        "GET": Need("memory", "read", _KEY_IN_URL),
        "PUT": Need("memory", "write", _KEY_IN_URL),
        "DELETE": Need("memory", "write", _KEY_IN_URL),
    }

    @extend_schema(parameters=[KEY_PATH], responses={200: MemoryItemSerializer, **error_responses(404)})
    def get(self, request: Request, key: str = "query") -> Response:
        return Response(item_answer(self.tenant, key))

    @extend_schema(
        parameters=[KEY_PATH],
        request=MemoryUpdateSerializer,
        responses={200: UpdatedStatusSerializer, **error_responses(404)},
    )
    def put(self, request: Request, key: str = "query") -> Response:
        """Replace the value of an existing key (404 when missing); answers the previous value."""
        services.validate_key(key)
        value = validated(MemoryUpdateSerializer, request.data)["value"]
        previous = services.memory_item_update(tenant=self.tenant, key=key, value=value)
        return Response({"status": "updated", "previous_value": previous})

    @extend_schema(parameters=[KEY_PATH], responses={200: DeletedStatusSerializer, **error_responses(404)})
    def delete(self, request: Request, key: str = "query") -> Response:
        services.validate_key(key)
        services.memory_item_delete(tenant=self.tenant, key=key)
        return Response({"status": "deleted"})


class MemoryQueryView(MemoryItemView):
    """POST runs a semantic query; GET/PUT/DELETE still reach a key literally named `query`."""

    info_description = "Search memory by meaning: query, limit, filter.key_prefix, min_score"
    access = {**MemoryItemView.access, "POST": NeedSome("memory", "read")}  # readable keys only

    @extend_schema(
        request=MemoryQuerySerializer,
        responses={200: MemoryQueryResultsSerializer},
        operation_id="memory_query",
    )
    def post(self, request: Request) -> Response:
        """The readable keys whose values are closest in meaning to `query`, best first, score in
        [0, 1]; a value written by a request that has returned is found by the next query."""
        body = validated(MemoryQuerySerializer, request.data)
        results = selectors.memory_query(
            principal=self.principal,
            query=body["query"],
            limit=body.get("limit") or 10,
            min_score=body.get("min_score") or 0.0,
            key_prefix=(body.get("filter") or {}).get("key_prefix"),
        )
        return Response({"results": results})
