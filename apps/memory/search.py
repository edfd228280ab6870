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
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from apps.core.embeddings import embed_text
from apps.core.vector_indexes import has_iterative_scan
from apps.memory.tenant_indexes import has_tenant_index

TABLE = "memory_memoryitem"
MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
_ROW_COUNT_SECONDS = 60


def vector_literal(vector: list[float]) -> str:
    # printf-style in a list: ~2x faster than an f-string generator, and this runs every query.
    return "[" + ",".join(["%.7g" % x for x in vector]) + "]"  # noqa: UP031


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


# A row of a search: id, key, value (jsonb, as the driver gives it) and cosine distance.
Row = tuple[int, str, Any, float]


def _with_values(ranked_cte: str, tenant_id: int) -> str:
    """Join the top rows of `ranked_cte` (id, key, distance) to their values in the same statement.

    The tenant again, not only the ids: an id is a fact about the table, not about whose row it is,
    and this join is what reads values out."""
    return (
        f"SELECT top.id, top.key, item.value, top.distance FROM {ranked_cte} AS top "  # noqa: S608
        f"JOIN {TABLE} AS item ON item.id = top.id AND item.tenant_id = {int(tenant_id)}"
    )


def _rows(raw: list[tuple[Any, ...]]) -> tuple[list[Row], float | None]:
    """Rows of (id, key, value, distance), best first, plus the one (NULL, ..., number) row the
    statement adds: the farthest distance the index yielded, or the capped row count."""
    rows = sorted(
        ((int(row[0]), row[1], row[2], float(row[3])) for row in raw if row[0] is not None),
        key=lambda row: (row[3], row[1]),
    )
    extra = next((float(row[3]) for row in raw if row[0] is None and row[3] is not None), None)
    return rows, extra


def _execute(settings_sql: str | None, settings_params: list[Any], sql: str, params: list[Any]) -> list[Any]:
    """One round trip for the transaction-local settings and the query.

    Outside a transaction both go in one message (client-side binding sends it as a simple query,
    which PostgreSQL runs as one implicit transaction, so `set_config(..., true)` holds for the query
    and ends with it). Inside one (a caller's atomic block, the test suite) they are two statements
    in a transaction (a savepoint inside the caller's), as before; so with server-side binding,
    which takes one statement per message."""
    server_side = connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
    with connection.cursor() as cursor:
        if settings_sql is None:
            cursor.execute(sql, params)
        elif server_side or connection.in_atomic_block or not connection.get_autocommit():
            with transaction.atomic():
                cursor.execute(settings_sql, settings_params)
                cursor.execute(sql, params)
        else:
            cursor.execute(f"{settings_sql}; {sql}", [*settings_params, *params])
            cursor.nextset()
        return cursor.fetchall()


def _exact_rows(
    tenant_id: int,
    vector: str,
    prefixes: list[str] | None,
    limit: int,
    min_score: float,
    threshold: int | None = None,
    count_up_to: int | None = None,
) -> tuple[list[Row], int | None]:
    """The true top-k of the tenant's matching rows, with values, in one statement.

    With `threshold`, the same statement first counts the matching rows (stopping past the
    threshold) and scans only when there are at most that many: a small tenant is answered in one
    round trip, and a big one learns it is big without paying for the exact scan (the count gates
    the scan as a one-time filter). The count stops at `count_up_to` (default: threshold + 1).
    Returns the rows and that count (None without a threshold)."""
    where, params = _filter_sql(tenant_id, prefixes)
    distance_sql, distance_params = _distance_clause(min_score, "distance")
    if threshold is None:
        counted, gate, gate_params, count_params = "", "", [], []
        tail = ""
    else:
        counted = (
            f"capped AS MATERIALIZED (SELECT count(*) AS n FROM "  # noqa: S608
            f"(SELECT 1 FROM {TABLE} WHERE {where} LIMIT %s) AS matching), "
        )
        count_params = [*params, count_up_to or threshold + 1]
        gate, gate_params = " AND (SELECT n FROM capped) <= %s", [threshold]
        tail = " UNION ALL SELECT NULL, NULL, NULL, n FROM capped"
    sql = (
        f"WITH {counted}candidates AS MATERIALIZED ("  # noqa: S608 - only placeholders are interpolated
        f"  SELECT id, key, embedding <=> %s::vector AS distance FROM {TABLE} WHERE {where}{gate}"
        f"), ranked AS ("
        f"  SELECT id, key, distance FROM candidates WHERE TRUE{distance_sql} ORDER BY distance, key LIMIT %s"
        f") {_with_values('ranked', tenant_id)}{tail}"
    )
    raw = _execute(None, [], sql, [*count_params, vector, *params, *gate_params, *distance_params, limit])
    rows, count = _rows(raw)
    return rows, (int(count) if count is not None else None)


def _exact(
    tenant_id: int, vector: str, prefixes: list[str] | None, limit: int, min_score: float
) -> list[tuple[int, float]]:
    """(id, distance) of the true top-k (the reference the index paths are measured against)."""
    return _ids(_exact_rows(tenant_id, vector, prefixes, limit, min_score)[0])


def _ids(rows: list[Row]) -> list[tuple[int, float]]:
    return [(row[0], row[3]) for row in rows]


def _over_fetch_rows(
    tenant_id: int, vector: str, prefixes: list[str] | None, limit: int, min_score: float, ef: int
) -> tuple[list[Row], float | None]:
    """pgvector < 0.8: the ef nearest rows of the whole table, then this tenant's among them.

    Also returns the distance of the farthest row the index gave (the frontier): every row closer
    than it was seen, so a min_score cut inside the frontier is complete even when short of k."""
    where, params = _filter_sql(tenant_id, prefixes, alias="nearest")
    distance_sql, distance_params = _distance_clause(min_score, "nearest.distance")
    sql = (
        f"WITH nearest AS MATERIALIZED ("  # noqa: S608 - only placeholders are interpolated
        f"  SELECT id, tenant_id, key, embedding <=> %s::vector AS distance FROM {TABLE} "
        f"  ORDER BY embedding <=> %s::vector LIMIT %s"
        f"), ranked AS (SELECT id, key, distance FROM nearest WHERE {where}{distance_sql} "
        f"  ORDER BY distance, key LIMIT %s) "
        f"{_with_values('ranked', tenant_id)} "
        f"UNION ALL SELECT NULL, NULL, NULL, max(distance) FROM nearest"
    )
    raw = _execute(
        "SELECT set_config('hnsw.ef_search', %s, true)",
        [str(ef)],
        sql,
        [vector, vector, ef, *params, *distance_params, limit],
    )
    return _rows(raw)


def _over_fetch(
    tenant_id: int, vector: str, prefixes: list[str] | None, limit: int, min_score: float, ef: int
) -> tuple[list[tuple[int, float]], float | None]:
    rows, frontier = _over_fetch_rows(tenant_id, vector, prefixes, limit, min_score, ef)
    return _ids(rows), frontier


def _tenant_index_rows(
    tenant_id: int, vector: str, prefixes: list[str] | None, limit: int, min_score: float, ef: int
) -> tuple[list[Row], float | None]:
    """The tenant's own partial HNSW index: its rows only, so `ef` rows are ample for k.

    Returns the rows and the frontier, as _over_fetch_rows does.

    Before pgvector 0.8 the scan searches the graph for the `ef` nearest and yields them nearest
    first, so the first `limit` of them that pass the filter are the top k of all `ef`: taking only
    those reads `limit` heap rows instead of `ef` (~1.6 KB each, the vector inline) for the same
    answer. An iterative scan (0.8+, relaxed order) may yield them slightly out of order: it takes
    `ef` and sorts, as before."""
    where, params = _filter_sql(tenant_id, prefixes, literal_tenant=True)
    distance_sql, distance_params = _distance_clause(min_score, "distance")
    taken = ef if has_iterative_scan() else limit
    sql = (
        f"WITH hits AS MATERIALIZED ("  # noqa: S608 - only placeholders and an int are interpolated
        f"  SELECT id, key, embedding <=> %s::vector AS distance FROM {TABLE} WHERE {where} "
        f"  ORDER BY embedding <=> %s::vector LIMIT %s"
        f"), ranked AS (SELECT id, key, distance FROM hits WHERE TRUE{distance_sql} "
        f"  ORDER BY distance, key LIMIT %s) "
        f"{_with_values('ranked', tenant_id)} "
        f"UNION ALL SELECT NULL, NULL, NULL, max(distance) FROM hits"
    )
    iterative = ", set_config('hnsw.iterative_scan', 'relaxed_order', true)" if has_iterative_scan() else ""
    # Vector index scans only (the tenant's btree plus a sort is the exact scan); of the two vector
    # indexes that can order these rows, the tenant's is the smaller and cheaper.
    settings_sql = (
        "SELECT set_config('hnsw.ef_search', %s, true), "
        "set_config('enable_seqscan', 'off', true), "
        "set_config('enable_bitmapscan', 'off', true), "
        f"set_config('enable_sort', 'off', true){iterative}"
    )
    raw = _execute(settings_sql, [str(ef)], sql, [vector, *params, vector, taken, *distance_params, limit])
    return _rows(raw)


def _tenant_index(
    tenant_id: int, vector: str, prefixes: list[str] | None, limit: int, min_score: float, ef: int
) -> tuple[list[tuple[int, float]], float | None]:
    rows, frontier = _tenant_index_rows(tenant_id, vector, prefixes, limit, min_score, ef)
    return _ids(rows), frontier


def _iterative_rows(
    tenant_id: int, vector: str, prefixes: list[str] | None, limit: int, min_score: float, ef: int
) -> list[Row]:
    """pgvector 0.8+: the index scan keeps going until `limit` rows pass the filter."""
    where, params = _filter_sql(tenant_id, prefixes)
    distance_sql, distance_params = _distance_clause(min_score, "distance")
    sql = (
        f"WITH hits AS MATERIALIZED ("  # noqa: S608 - only placeholders are interpolated
        f"  SELECT id, key, embedding <=> %s::vector AS distance FROM {TABLE} WHERE {where} "
        f"  ORDER BY embedding <=> %s::vector LIMIT %s"
        f"), ranked AS (SELECT id, key, distance FROM hits WHERE TRUE{distance_sql} "
        f"  ORDER BY distance, key LIMIT %s) "
        f"{_with_values('ranked', tenant_id)}"
    )
    # Keep the planner on the vector index: the tenant's btree plus a sort is the exact scan,
    # which search_plan() already chose against.
    settings_sql = (
        "SELECT set_config('hnsw.ef_search', %s, true), "
        "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
        "set_config('hnsw.max_scan_tuples', %s, true), "
        "set_config('enable_seqscan', 'off', true), "
        "set_config('enable_bitmapscan', 'off', true), "
        "set_config('enable_sort', 'off', true)"
    )
    raw = _execute(
        settings_sql,
        [str(ef), str(settings.SLOP_MEMORY_MAX_SCAN_TUPLES)],
        sql,
        [vector, *params, vector, limit, *distance_params, limit],
    )
    return _rows(raw)[0]


def _iterative(
    tenant_id: int, vector: str, prefixes: list[str] | None, limit: int, min_score: float, ef: int
) -> list[tuple[int, float]]:
    return _ids(_iterative_rows(tenant_id, vector, prefixes, limit, min_score, ef))


def _decode(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def ef_search_for(limit: int, tenant_rows: int, table_rows: int) -> int:
    """How many rows of the whole table to take from the index so `limit` of them are likely ours."""
    share = min(1.0, tenant_rows / max(table_rows, tenant_rows, 1))
    wanted = math.ceil(limit / max(share, 1e-9) * settings.SLOP_MEMORY_OVERFETCH_FACTOR)
    return max(min(wanted, MAX_EF_SEARCH), settings.SLOP_MEMORY_MIN_EF_SEARCH, limit)


def search_plan(
    tenant_id: int, prefixes: list[str] | None, limit: int, matching: int | None = None
) -> tuple[str, int]:
    """("exact", 0), ("tenant_index", ef_search) or ("index", ef_search), for this tenant and filter.

    `matching`: the tenant's matching rows counted up to the exact threshold + 1, when the caller
    has it already (nearest_rows gets it from the same statement as the exact scan)."""
    threshold = settings.SLOP_MEMORY_EXACT_SEARCH_MAX_ROWS
    if matching is None:
        matching = _count_capped(tenant_id, prefixes, threshold + 1)
    if matching <= threshold:
        return "exact", 0
    if has_tenant_index(tenant_id) and prefixes is None:  # every row the index yields passes
        return "tenant_index", max(settings.SLOP_MEMORY_MIN_EF_SEARCH, limit)
    tenant_rows = max(_matching_rows(tenant_id, prefixes), matching)
    if has_tenant_index(tenant_id):
        all_rows = max(_matching_rows(tenant_id, None), tenant_rows)
        return "tenant_index", ef_search_for(limit, tenant_rows, all_rows)
    table_rows = max(_table_rows(), tenant_rows)
    ef = ef_search_for(limit, tenant_rows, table_rows)
    if not has_iterative_scan() and ef >= MAX_EF_SEARCH and limit / (tenant_rows / table_rows) > ef:
        return "exact", 0  # too small a share for the index to find k of its rows
    return "index", ef


def _count_capped(tenant_id: int, prefixes: list[str] | None, cap: int) -> int:
    where, params = _filter_sql(tenant_id, prefixes)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {TABLE} WHERE {where} LIMIT %s) AS capped",  # noqa: S608
            [*params, cap],
        )
        return int(cursor.fetchone()[0])


# (tenant, filter) -> (when, rows counted) for filters seen with more than twice the exact threshold.
_far_above: dict[tuple[int, str], tuple[float, int]] = {}


def _filter_key(tenant_id: int, prefixes: list[str] | None) -> tuple[int, str]:
    return tenant_id, json.dumps(prefixes)


def _known_far_above(tenant_id: int, prefixes: list[str] | None, threshold: int) -> int | None:
    """The count seen for a filter that matched more than twice the threshold a moment ago, of a
    tenant that still has an index of its own.

    Such a filter skips the count (a few ms at 20k rows) for SLOP_MEMORY_TENANT_INDEX_CACHE_SECONDS:
    it would have to lose over half its rows in that time to belong on the exact path, and a tenant
    that shrinks loses its own index (below half the index threshold), which ends this at once."""
    if not has_tenant_index(tenant_id):
        return None
    seen = _far_above.get(_filter_key(tenant_id, prefixes))
    if seen is None or time.monotonic() - seen[0] > settings.SLOP_MEMORY_TENANT_INDEX_CACHE_SECONDS:
        return None
    return seen[1] if seen[1] > 2 * threshold else None


def _remember_size(tenant_id: int, prefixes: list[str] | None, matching: int, threshold: int) -> None:
    key = _filter_key(tenant_id, prefixes)
    if matching > 2 * threshold:
        if len(_far_above) > 10_000:
            _far_above.clear()
        _far_above[key] = (time.monotonic(), matching)
    else:
        _far_above.pop(key, None)


def nearest_rows(
    *, tenant_id: int, vector: list[float], limit: int, prefixes: list[str] | None, min_score: float = 0.0
) -> tuple[list[Row], str]:
    """The tenant's nearest rows, with their keys and values, best first, and how they were found:
    "exact", "index", "tenant_index".

    A small tenant is answered by its first statement (count and exact scan together); a big one
    by that count and one index statement (settings included), values joined in."""
    literal = vector_literal(vector)
    threshold = settings.SLOP_MEMORY_EXACT_SEARCH_MAX_ROWS
    matching = _known_far_above(tenant_id, prefixes, threshold)
    if matching is None:
        rows, matching = _exact_rows(
            tenant_id, literal, prefixes, limit, min_score, threshold=threshold, count_up_to=2 * threshold + 1
        )
        assert matching is not None
        if matching <= threshold:
            return rows, "exact"
        _remember_size(tenant_id, prefixes, matching, threshold)
    plan, ef = search_plan(tenant_id, prefixes, limit, matching=matching)
    if plan == "index" and has_iterative_scan():
        rows = _iterative_rows(tenant_id, literal, prefixes, limit, min_score, ef)
        if len(rows) >= limit:
            return rows, "index"
    elif plan in ("index", "tenant_index"):
        scan = _tenant_index_rows if plan == "tenant_index" else _over_fetch_rows
        # The tenant's share near the query can be below its share of the table (or the prefix
        # filter's share of the tenant's rows): when the first pass comes back short, one wider
        # pass before the exact scan.
        for attempt_ef in dict.fromkeys((ef, MAX_EF_SEARCH)):
            rows, frontier = scan(tenant_id, literal, prefixes, limit, min_score, attempt_ef)
            # Short of k is still complete when min_score cut off inside what the index returned.
            cut_inside = min_score > 0 and frontier is not None and frontier > 1.0 - min_score
            if len(rows) >= limit or cut_inside:
                return rows, plan
    return _exact_rows(tenant_id, literal, prefixes, limit, min_score)[0], "exact"


def nearest_ids(
    *, tenant_id: int, vector: list[float], limit: int, prefixes: list[str] | None, min_score: float = 0.0
) -> tuple[list[tuple[int, float]], str]:
    """(id, distance) of the tenant's nearest rows and the plan (nearest_rows without the values)."""
    rows, plan = nearest_rows(
        tenant_id=tenant_id, vector=vector, limit=limit, prefixes=prefixes, min_score=min_score
    )
    return _ids(rows), plan


def semantic_search(
    *, tenant_id: int, query: str, limit: int, prefixes: list[str] | None, min_score: float
) -> list[dict[str, Any]]:
    vector = embed_text(query, tenant_id=tenant_id)
    rows, _ = nearest_rows(
        tenant_id=tenant_id, vector=vector, limit=limit, prefixes=prefixes, min_score=min_score
    )
    return [
        {"key": key, "value": _decode(value), "score": round(min(1.0, max(0.0, 1.0 - distance)), 6)}
        for _, key, value, distance in rows
    ]
