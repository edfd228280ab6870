"""Reads from a tenant's memory: one item, the key list, and semantic query.

Scope prefixes (PROTOCOL.md §3) and the caller's own filters are applied inside the SQL, so a list or
a search never fetches a key the caller may not read and never comes back short because of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connections, router
from django.db.models import Q

from apps.core import loop_io
from apps.core.errors import NotFound, ValidationFailed
from apps.core.pagination import Page, paginate
from apps.memory.models import MemoryItem
from apps.memory.search import semantic_search
from apps.memory.services import validate_prefix
from apps.tenants.access import readable
from apps.tenants.authentication import Principal
from apps.tenants.models import Tenant
from apps.tenants.scopes import intersect_prefixes

MAX_QUERY_LIMIT = 100


def readable_prefixes(principal: Principal, extra_prefix: str | None = None) -> list[str] | None:
    """Key prefixes the caller may read, narrowed by `extra_prefix`: None = every key, [] = none.

    Filtering only: whether the caller may list or query at all is the view's declared check."""
    prefixes = readable(principal, "memory")
    if extra_prefix:
        return intersect_prefixes(prefixes, [extra_prefix])
    return prefixes


def _prefix_q(prefixes: list[str]) -> Q:
    condition = Q(pk__in=[])
    for prefix in prefixes:
        condition |= Q(key__startswith=prefix)
    return condition


# Constant SQL (the model's own table name); the key and the tenant are parameters.
_ITEM_SQL = (
    f"SELECT id, key, value, created_at, updated_at FROM {MemoryItem._meta.db_table} "  # noqa: S608
    "WHERE tenant_id = %s AND key = %s"
)


def memory_item_get(*, tenant: Tenant, key: str) -> MemoryItem:
    """The item GET /memory/:key answers with: the hot read path. Its SQL is written once, not
    built by the ORM each request (~550 µs of CPU a read, half of the rest of the request:
    bench/request_cost.py); the tenant predicate is in it, and (tenant, key) is unique. The
    fields come back through the model's own conversions (JSON, timestamps), as the ORM's would."""
    rows = MemoryItem.objects.unscoped().raw(_ITEM_SQL, [tenant.pk, key])  # tenant_id in the SQL
    item = next(iter(rows), None)
    if item is None:
        raise NotFound(f"Memory key not found: {key}")
    return item


_ANSWER_SQL = (
    f"SELECT key, value, created_at, updated_at FROM {MemoryItem._meta.db_table} "  # noqa: S608
    "WHERE tenant_id = %s AND key = %s"
)
_VALUE = MemoryItem._meta.get_field("value")


def memory_item_answer(*, tenant: Tenant, key: str) -> tuple[str, Any, datetime, datetime]:
    """What GET /memory/:key answers with (key, value, created_at, updated_at), read by a cursor:
    the model instance raw() builds, with its field and converter bookkeeping, was ~150 µs of
    CPU of a request that uses four of its columns (bench/request_cost.py). The value goes through
    the model field's own conversion from the database, as the ORM's read would."""
    connection = connections[router.db_for_read(MemoryItem)]
    with connection.cursor() as cursor:
        cursor.execute(_ANSWER_SQL, [tenant.pk, key])  # tenant_id in the SQL; (tenant, key) is unique
        row = cursor.fetchone()
    return memory_item_of(row, key, connection)


async def memory_item_answer_on_loop(*, tenant: Tenant, key: str) -> tuple[str, Any, datetime, datetime]:
    """memory_item_answer for code on the event loop, through apps.core.loop_io: alone, the same
    statement; with the event loop's other reads of the moment, one statement for them all."""
    row = await _answer_rows((tenant.pk, key))
    return memory_item_of(row, key, None)  # (JSONField's conversion reads no connection)


# The rows of several (tenant, key) pairs: each pair's tenant predicate is in the join, and
# (tenant, key) is unique, so a pair finds its own row or none.
_ANSWERS_SQL = (
    "SELECT item.tenant_id, item.key, item.value, item.created_at, item.updated_at "  # noqa: S608
    f"FROM {MemoryItem._meta.db_table} AS item "
    "JOIN unnest(%s::bigint[], %s::text[]) AS wanted(tenant_id, key) "
    "ON item.tenant_id = wanted.tenant_id AND item.key = wanted.key"
)


async def _fetch_answer_rows(wanted: Sequence[tuple[int, str]]) -> list[tuple[Any, ...] | None]:
    if len(wanted) == 1:
        return [await loop_io.fetch_one(_ANSWER_SQL, wanted[0])]
    tenant_ids, keys = zip(*wanted, strict=True)
    found = {
        (tenant_id, key): (key, value, created_at, updated_at)
        for tenant_id, key, value, created_at, updated_at in await loop_io.fetch_all(
            _ANSWERS_SQL, (list(tenant_ids), list(keys))
        )
    }
    return [found.get(pair) for pair in wanted]


_answer_rows = loop_io.Gathered("memory_item", _fetch_answer_rows)


def memory_item_of(
    row: tuple[Any, ...] | None, key: str, connection: Any
) -> tuple[str, Any, datetime, datetime]:
    if row is None:
        raise NotFound(f"Memory key not found: {key}")
    return row[0], _VALUE.from_db_value(row[1], _VALUE.cached_col, connection), row[2], row[3]


def memory_item_list(*, principal: Principal, prefix: str | None, cursor: str | None, limit: int) -> Page:
    prefixes = readable_prefixes(principal, prefix)
    queryset = MemoryItem.objects.for_tenant(principal.tenant).only("pk", "key", "created_at", "updated_at")
    if prefixes is not None:
        queryset = queryset.filter(_prefix_q(prefixes))
    return paginate(queryset, cursor=cursor, limit=limit)


def memory_query(
    *,
    principal: Principal,
    query: str,
    limit: int = 10,
    key_prefix: str | None = None,
    min_score: float = 0.0,
) -> list[dict[str, Any]]:
    """The caller's readable items nearest in meaning to `query`: [{"key", "value", "score"}].

    `score` is the cosine similarity clamped to [0, 1]; results are ordered by it, best first.
    `limit` is held to 1..100; an empty query is a 400 (callers: the API, and the AI's memory tool)."""
    if not isinstance(query, str) or not query.strip():
        raise ValidationFailed({"query": ["Required: a non-empty string."]})
    limit = max(1, min(int(limit), MAX_QUERY_LIMIT))
    min_score = max(0.0, min(float(min_score), 1.0))
    key_prefix = validate_prefix(key_prefix, "key_prefix")
    prefixes = readable_prefixes(principal, key_prefix)
    if prefixes == []:
        return []
    return semantic_search(
        tenant_id=principal.tenant.pk, query=query, limit=limit, prefixes=prefixes, min_score=min_score
    )
