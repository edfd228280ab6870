"""The /memory endpoints (PROTOCOL.md §7): thin views over services and selectors."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ValidationFailed
from apps.core.pagination import page_params
from apps.memory import selectors, services
from apps.tenants.access import Need, NeedSome, body, url
from apps.tenants.api import SlopView, json_body

QUERY_MAX_LIMIT = selectors.MAX_QUERY_LIMIT
QUERY_MAX_CHARACTERS = 10_000


def _timestamp(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _required_value(body: dict[str, Any]) -> Any:
    if "value" not in body:
        raise ValidationFailed({"value": ["This field is required."]})
    return body["value"]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_query(body: dict[str, Any]) -> dict[str, Any]:
    """The query request's fields, or a 400 listing every problem at once."""
    details: dict[str, list[str]] = {}
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        details["query"] = ["Required: a non-empty string."]
    elif len(query) > QUERY_MAX_CHARACTERS:
        details["query"] = [f"At most {QUERY_MAX_CHARACTERS} characters."]
    limit = body.get("limit", 10)
    if limit is None:
        limit = 10
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= QUERY_MAX_LIMIT:
        details["limit"] = [f"Must be an integer between 1 and {QUERY_MAX_LIMIT}."]
    min_score = body.get("min_score", 0)
    if min_score is None:
        min_score = 0
    if not _number(min_score) or not 0 <= min_score <= 1:
        details["min_score"] = ["Must be a number between 0 and 1."]
    key_prefix = None
    filters = body.get("filter")
    if filters is not None and not isinstance(filters, dict):
        details["filter"] = ['Must be an object, e.g. {"key_prefix": "thread:"}.']
    elif isinstance(filters, dict):
        key_prefix = filters.get("key_prefix")
        try:
            key_prefix = services.validate_prefix(key_prefix, "filter.key_prefix")
        except ValidationFailed as exc:
            details.update(exc.extra["details"])
    if details:
        raise ValidationFailed(details)
    return {"query": query, "limit": limit, "min_score": float(min_score), "key_prefix": key_prefix or None}


# GET/PUT/DELETE /memory/query reach a key literally named `query` (that route has no key part).
_KEY_IN_URL = url("key", default="query", validate=services.validate_key)


class MemoryCollectionView(SlopView):
    info_description = "Store a key-value pair (POST) and list keys (GET, ?prefix=)"
    access = {
        "GET": NeedSome("memory", "read"),  # the list holds only readable keys
        "POST": Need("memory", "write", body("key", validate=services.validate_key)),
    }

    def get(self, request: Request) -> Response:
        cursor, limit = page_params(request.query_params)
        prefix = services.validate_prefix(request.query_params.get("prefix"))
        page = selectors.memory_item_list(principal=self.principal, prefix=prefix, cursor=cursor, limit=limit)
        keys = [
            {
                "key": item.key,
                "created_at": _timestamp(item.created_at),
                "updated_at": _timestamp(item.updated_at),
            }
            for item in page.items
        ]
        return Response({"keys": keys, "next_cursor": page.next_cursor})

    def post(self, request: Request) -> Response:
        body = json_body(request)
        key = services.validate_key(body.get("key"))
        services.memory_item_store(tenant=self.tenant, key=key, value=_required_value(body))
        return Response({"status": "stored"})


class MemoryItemView(SlopView):
    info_description = "Get, update (returns previous_value) or delete one key"
    access = {
        "GET": Need("memory", "read", _KEY_IN_URL),
        "PUT": Need("memory", "write", _KEY_IN_URL),
        "DELETE": Need("memory", "write", _KEY_IN_URL),
    }

    def get(self, request: Request, key: str = "query") -> Response:
        services.validate_key(key)
        item = selectors.memory_item_get(tenant=self.tenant, key=key)
        return Response(
            {
                "key": item.key,
                "value": item.value,
                "created_at": _timestamp(item.created_at),
                "updated_at": _timestamp(item.updated_at),
            }
        )

    def put(self, request: Request, key: str = "query") -> Response:
        services.validate_key(key)
        value = _required_value(json_body(request))
        previous = services.memory_item_update(tenant=self.tenant, key=key, value=value)
        return Response({"status": "updated", "previous_value": previous})

    def delete(self, request: Request, key: str = "query") -> Response:
        services.validate_key(key)
        services.memory_item_delete(tenant=self.tenant, key=key)
        return Response({"status": "deleted"})


class MemoryQueryView(MemoryItemView):
    """POST runs a semantic query; GET/PUT/DELETE still reach a key literally named `query`."""

    info_description = "Search memory by meaning: query, limit, filter.key_prefix, min_score"
    access = {**MemoryItemView.access, "POST": NeedSome("memory", "read")}  # readable keys only

    def post(self, request: Request) -> Response:
        params = parse_query(json_body(request))
        results = selectors.memory_query(principal=self.principal, **params)
        return Response({"results": results})
