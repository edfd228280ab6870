"""Semantic query over one tenant's memory that is complete for small tenants and fast for big ones.

The HNSW index covers the whole table (every tenant), and pgvector applies WHERE clauses after the
index scan: a plain `WHERE tenant_id = … ORDER BY embedding <=> q LIMIT k` through the index could
return fewer than k rows, or none, for a tenant that owns a small share of the table. So:

1. Count the tenant's matching rows (tenant + scope prefixes + key_prefix), stopping at the exact
   threshold. At or below it: an exact scan of just those rows (a materialised CTE keeps the
   planner off the HNSW index). This is the true top-k, always complete.
2. Above it, a tenant with an index of its own (apps/memory/tenant_indexes.py: big tenants get a
   partial HNSW index) is served by that index: every row it yields is the tenant's, so a small
   `ef_search` fills the top k.
3. Otherwise through the shared index. pgvector 0.8+ (`hnsw.iterative_scan`) keeps scanning until enough
   rows pass the filter. Older versions (pgserver ships 0.6.2) return at most `hnsw.ef_search`
   rows, so the query takes the `ef` nearest rows of the whole table and filters those, with `ef`
   sized from the tenant's share of the table (`k / share x over-fetch factor`, at most 1000).
4. If the index yields fewer than k rows, once more with ef = 1000, then the exact scan answers
   instead: complete wins over fast.

Vectors are unit length; cosine distance d is in [0, 2] and score = clamp(1 - d, 0, 1).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from apps.core.embeddings import embed_text
from apps.memory.tenant_indexes import has_tenant_index

TABLE = "memory_memoryitem"
MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
_ROW_COUNT_SECONDS = 60

_version_lock = threading.Lock()
_pgvector_version: tuple[int, ...] | None = None


def pgvector_version() -> tuple[int, ...]:
    global _pgvector_version
    if _pgvector_version is None:
        with _version_lock, connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
            text = row[0] if row else "0"
            _pgvector_version = tuple(int(part) for part in text.split(".") if part.isdigit())
    return _pgvector_version


def has_iterative_scan() -> bool:
    return pgvector_version() >= (0, 8)


def vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def _like_escape(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _filter_sql(
    tenant_id: int, prefixes: list[str] | None, *, alias: str = "", literal_tenant: bool = False
) -> tuple[str, list[Any]]:
    column = f"{alias}." if alias else ""
    # literal_tenant: the id written into the SQL (it is an int), for a partial index's predicate,
    # which the planner matches against constants only, never against a bound parameter.
    clauses = [f"{column}tenant_id = {int(tenant_id)}" if literal_tenant else f"{column}tenant_id = %s"]
    params: list[Any] = [] if literal_tenant else [tenant_id]
    if prefixes is not None:
        likes = " OR ".join(f"{column}key LIKE %s" for _ in prefixes) or "FALSE"
        clauses.append(f"({likes})")
        params.extend(_like_escape(prefix) for prefix in prefixes)
    return " AND ".join(clauses), params


def _count_matching(tenant_id: int, prefixes: list[str] | None, cap: int) -> int:
    where, params = _filter_sql(tenant_id, prefixes)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {TABLE} WHERE {where} LIMIT %s) AS capped",  # noqa: S608
            [*params, cap],
        )
        return int(cursor.fetchone()[0])


def _matching_rows(tenant_id: int, prefixes: list[str] | None) -> int:
    """How many rows the tenant's filter matches, cached for a minute (it only sizes the over-fetch)."""
    digest = hashlib.sha256(json.dumps(prefixes).encode()).hexdigest()[:16]
    cache_key = f"memory:rows:{tenant_id}:{digest}"
    rows = cache.get(cache_key)
    if rows is None:
        where, params = _filter_sql(tenant_id, prefixes)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE {where}", params)  # noqa: S608
            rows = int(cursor.fetchone()[0])
        cache.set(cache_key, rows, _ROW_COUNT_SECONDS)
    return int(rows)


def _table_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [TABLE])
        row = cursor.fetchone()
    return max(int(row[0]) if row else 0, 0)


def _distance_clause(min_score: float, column: str) -> tuple[str, list[Any]]:
    if min_score <= 0:
        return "", []
    return f" AND {column} <= %s", [1.0 - min_score]


def _exact(
    tenant_id: int, vector: str, prefixes: list[str] | None, limit: int, min_score: float
) -> list[tuple[int, float]]:
    where, params = _filter_sql(tenant_id, prefixes)
    distance_sql, distance_params = _distance_clause(min_score, "distance")
    sql = (
        f"WITH candidates AS MATERIALIZED ("  # noqa: S608 - only placeholders are interpolated
        f"  SELECT id, key, embedding <=> %s::vector AS distance FROM {TABLE} WHERE {where}"
        f") SELECT id, distance FROM candidates WHERE TRUE{distance_sql} "
        f"ORDER BY distance, key LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [vector, *params, *distance_params, limit])
        return [(int(row[0]), float(row[1])) for row in cursor.fetchall()]


def _over_fetch(
    tenant_id: int, vector: str, prefixes: list[str] | None, limit: int, min_score: float, ef: int
) -> tuple[list[tuple[int, float]], float | None]:
    """pgvector < 0.8: the ef nearest rows of the whole table, then this tenant's among them.

    Also returns the distance of the farthest row the index gave (the frontier): every row closer
    than it was seen, so a min_score cut inside the frontier is complete even when short of k."""
    where, params = _filter_sql(tenant_id, prefixes, alias="nearest")
    distance_sql, distance_params = _distance_clause(min_score, "nearest.distance")
    sql = (
        f"WITH nearest AS MATERIALIZED ("  # noqa: S608 - only placeholders are interpolated
        f"  SELECT id, tenant_id, key, embedding <=> %s::vector AS distance FROM {TABLE} "
        f"  ORDER BY embedding <=> %s::vector LIMIT %s"
        f") (SELECT id, distance FROM nearest WHERE {where}{distance_sql} "
        f"   ORDER BY distance, key LIMIT %s) "
        f"UNION ALL SELECT NULL, max(distance) FROM nearest"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef)])
        cursor.execute(sql, [vector, vector, ef, *params, *distance_params, limit])
        return _hits_and_frontier(cursor.fetchall())


def _tenant_index(
    tenant_id: int, vector: str, prefixes: list[str] | None, limit: int, min_score: float, ef: int
) -> tuple[list[tuple[int, float]], float | None]:
    """The tenant's own partial HNSW index: its rows only, so `ef` rows are ample for k.

    Returns the hits and the frontier, as _over_fetch does."""
    where, params = _filter_sql(tenant_id, prefixes, literal_tenant=True)
    distance_sql, distance_params = _distance_clause(min_score, "distance")
    sql = (
        f"WITH hits AS MATERIALIZED ("  # noqa: S608 - only placeholders and an int are interpolated
        f"  SELECT id, key, embedding <=> %s::vector AS distance FROM {TABLE} WHERE {where} "
        f"  ORDER BY embedding <=> %s::vector LIMIT %s"
        f") (SELECT id, distance FROM hits WHERE TRUE{distance_sql} ORDER BY distance, key LIMIT %s) "
        f"UNION ALL SELECT NULL, max(distance) FROM hits"
    )
    iterative = ", set_config('hnsw.iterative_scan', 'relaxed_order', true)" if has_iterative_scan() else ""
    with transaction.atomic(), connection.cursor() as cursor:
        # Vector index scans only (the tenant's btree plus a sort is the exact scan); of the two
        # vector indexes that can order these rows, the tenant's is the smaller and cheaper.
        cursor.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), "
            "set_config('enable_seqscan', 'off', true), "
            "set_config('enable_bitmapscan', 'off', true), "
            f"set_config('enable_sort', 'off', true){iterative}",
            [str(ef)],
        )
        cursor.execute(sql, [vector, *params, vector, ef, *distance_params, limit])
        return _hits_and_frontier(cursor.fetchall())


def _hits_and_frontier(rows: list[tuple[Any, Any]]) -> tuple[list[tuple[int, float]], float | None]:
    """Rows of (id, distance) plus one (NULL, farthest distance the index yielded)."""
    hits = sorted(((int(row[0]), float(row[1])) for row in rows if row[0] is not None), key=lambda h: h[1])
    frontier = next((float(row[1]) for row in rows if row[0] is None and row[1] is not None), None)
    return hits, frontier


def _iterative(
    tenant_id: int, vector: str, prefixes: list[str] | None, limit: int, min_score: float, ef: int
) -> list[tuple[int, float]]:
    """pgvector 0.8+: the index scan keeps going until `limit` rows pass the filter."""
    where, params = _filter_sql(tenant_id, prefixes)
    distance_sql, distance_params = _distance_clause(min_score, "distance")
    sql = (
        f"WITH hits AS MATERIALIZED ("  # noqa: S608 - only placeholders are interpolated
        f"  SELECT id, key, embedding <=> %s::vector AS distance FROM {TABLE} WHERE {where} "
        f"  ORDER BY embedding <=> %s::vector LIMIT %s"
        f") SELECT id, distance FROM hits WHERE TRUE{distance_sql} ORDER BY distance, key LIMIT %s"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # One round trip for the settings. Keep the planner on the vector index: the tenant's btree
        # plus a sort is the exact scan, which search_plan() already chose against.
        cursor.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), "
            "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.max_scan_tuples', %s, true), "
            "set_config('enable_seqscan', 'off', true), "
            "set_config('enable_bitmapscan', 'off', true), "
            "set_config('enable_sort', 'off', true)",
            [str(ef), str(settings.SLOP_MEMORY_MAX_SCAN_TUPLES)],
        )
        cursor.execute(sql, [vector, *params, vector, limit, *distance_params, limit])
        return [(int(row[0]), float(row[1])) for row in cursor.fetchall()]


def _fetch(tenant_id: int, ids_and_distances: list[tuple[int, float]]) -> list[dict[str, Any]]:
    if not ids_and_distances:
        return []
    ids = [item_id for item_id, _ in ids_and_distances]
    with connection.cursor() as cursor:
        # The tenant again, not only the ids: an id is a fact about the table, not about whose row
        # it is, and this statement is the one that reads values out.
        cursor.execute(
            f"SELECT id, key, value FROM {TABLE} WHERE tenant_id = %s AND id = ANY(%s)",  # noqa: S608
            [tenant_id, ids],
        )
        rows = {int(row[0]): (row[1], row[2]) for row in cursor.fetchall()}
    results = []
    for item_id, distance in ids_and_distances:
        if item_id not in rows:  # deleted between the two statements (or not the tenant's)
            continue
        key, value = rows[item_id]
        score = min(1.0, max(0.0, 1.0 - distance))
        results.append({"key": key, "value": _decode(value), "score": round(score, 6)})
    return results


def _decode(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def ef_search_for(limit: int, tenant_rows: int, table_rows: int) -> int:
    """How many rows of the whole table to take from the index so `limit` of them are likely ours."""
    share = min(1.0, tenant_rows / max(table_rows, tenant_rows, 1))
    wanted = math.ceil(limit / max(share, 1e-9) * settings.SLOP_MEMORY_OVERFETCH_FACTOR)
    return max(min(wanted, MAX_EF_SEARCH), settings.SLOP_MEMORY_MIN_EF_SEARCH, limit)


def search_plan(tenant_id: int, prefixes: list[str] | None, limit: int) -> tuple[str, int]:
    """("exact", 0), ("tenant_index", ef_search) or ("index", ef_search), for this tenant and filter."""
    threshold = settings.SLOP_MEMORY_EXACT_SEARCH_MAX_ROWS
    matching = _count_matching(tenant_id, prefixes, threshold + 1)
    if matching <= threshold:
        return "exact", 0
    tenant_rows = max(_matching_rows(tenant_id, prefixes), matching)
    if has_tenant_index(tenant_id):
        if prefixes is None:  # every row the index yields passes the filter
            return "tenant_index", max(settings.SLOP_MEMORY_MIN_EF_SEARCH, limit)
        all_rows = max(_matching_rows(tenant_id, None), tenant_rows)
        return "tenant_index", ef_search_for(limit, tenant_rows, all_rows)
    table_rows = max(_table_rows(), tenant_rows)
    ef = ef_search_for(limit, tenant_rows, table_rows)
    if not has_iterative_scan() and ef >= MAX_EF_SEARCH and limit / (tenant_rows / table_rows) > ef:
        return "exact", 0  # too small a share for the index to find k of its rows
    return "index", ef


def nearest_ids(
    *, tenant_id: int, vector: list[float], limit: int, prefixes: list[str] | None, min_score: float = 0.0
) -> tuple[list[tuple[int, float]], str]:
    """The (id, distance) of the tenant's nearest rows and how they were found: "exact", "index",
    "tenant_index"."""
    literal = vector_literal(vector)
    plan, ef = search_plan(tenant_id, prefixes, limit)
    if plan == "index" and has_iterative_scan():
        hits = _iterative(tenant_id, literal, prefixes, limit, min_score, ef)
        if len(hits) >= limit:
            return hits, "index"
    elif plan in ("index", "tenant_index"):
        scan = _tenant_index if plan == "tenant_index" else _over_fetch
        # The tenant's share near the query can be below its share of the table (or the prefix
        # filter's share of the tenant's rows): when the first pass comes back short, one wider
        # pass before the exact scan.
        for attempt_ef in dict.fromkeys((ef, MAX_EF_SEARCH)):
            hits, frontier = scan(tenant_id, literal, prefixes, limit, min_score, attempt_ef)
            # Short of k is still complete when min_score cut off inside what the index returned.
            cut_inside = min_score > 0 and frontier is not None and frontier > 1.0 - min_score
            if len(hits) >= limit or cut_inside:
                return hits, plan
    return _exact(tenant_id, literal, prefixes, limit, min_score), "exact"


def semantic_search(
    *, tenant_id: int, query: str, limit: int, prefixes: list[str] | None, min_score: float
) -> list[dict[str, Any]]:
    vector = embed_text(query, tenant_id=tenant_id)
    hits, _ = nearest_ids(
        tenant_id=tenant_id, vector=vector, limit=limit, prefixes=prefixes, min_score=min_score
    )
    return _fetch(tenant_id, hits)
